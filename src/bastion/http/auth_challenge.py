"""The authorization challenge endpoint: signing in from a terminal, with prompts.

OAuth 2.0 for First-Party Applications (draft-ietf-oauth-first-party-apps-04) where it fits,
open only to Bastion's own first-party clients (``clients.first_party``: ``bastion-cli``).
``POST /t/{tenant}/oauth2/authorize-challenge``, form-encoded (decision 0014 has the whole
contract):

1. ``username`` and ``password``, with ``client_id``, ``scope``, ``resource`` and PKCE
   (``code_challenge``, ``code_challenge_method=S256``): 200 ``{"authorization_code"}`` when
   the password is all the account needs; 403 ``insufficient_authorization`` with an
   ``auth_session`` and ``required`` when a second factor is due; 403 ``redirect_to_web``
   when the account must first register an authenticator, which happens in a browser.
2. ``auth_session`` with ``otp`` or ``recovery_code``: 200 ``{"authorization_code"}``.

A step-up (RFC 9470, draft Appendix A.7) starts instead with the ``auth_session`` of a token
response (draft §6.1), PKCE, ``scope`` and ``resource``, and neither password nor code: 403
``insufficient_authorization`` asks for the second factor only, and step 2 issues a code for
the same sign-in session with a fresh ``auth_time``, ``mfa_time`` and ``acr``.

The code is redeemed at the token endpoint with its ``code_verifier`` and no
``redirect_uri``. Each step goes through :mod:`bastion.authority.signin`, as the pages do:
failures count against the same counters per account, per authenticator and per source
address (A3, :mod:`bastion.authority.throttle`) and are audited the same way (plus the
client and ``flow``), and Argon2id runs between transactions, only after the throttle let
the attempt through. A blocked attempt is answered 429 ``temporarily_unavailable`` with
``Retry-After``, unchecked (an ``auth_session`` sent with it stays usable). A successful
sign-in's answer carries ``known_client``: sent back with a later password step of the same
user, it exempts that client from the per-address throttle, as the cookie of a browser does.
Every answer is JSON with ``Cache-Control: no-store``, carries ``iss`` once the tenant is
known, and never echoes a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority import challenge_sessions, factor_store, known_clients, signin, throttle
from bastion.authority.challenge_sessions import AuthSession, SignInRequest
from bastion.authority.clients import GRANT_AUTHORIZATION_CODE, Client
from bastion.authority.grants import pkce_verification as pkce
from bastion.authority.grants.authorization_code import NO_REDIRECT_URI, issue_code
from bastion.authority.parts import Authority
from bastion.authority.resources import parse_scope_request
from bastion.authority.sign_in_sessions import (
    SignInSession,
    create_session,
    end_reason,
    find_session,
    parse_step_up,
    record_second_factor,
)
from bastion.core.errors import (
    BastionError,
    InvalidRequest,
    NotFound,
    OAuthError,
    SignInFailed,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from bastion.core.text import has_control
from bastion.directory.tenants import Tenant
from bastion.directory.users import User, find_user, get_user
from bastion.http.discovery_endpoints import published_audiences
from bastion.http.endpoint_support import (
    NO_STORE,
    authority_of,
    client_address,
    in_thread,
    issuer_of,
    load_tenant,
    request_client,
)
from bastion.http.signin_pages import TOTP_AMR
from bastion.store import housekeeping
from bastion.store.schema import recovery_codes

PATH = "/t/{tenant}/oauth2/authorize-challenge"
#: the audit records' ``flow``: how the sign-in was asked
FLOW = "authorization_challenge"
MAX_NONCE = 512

#: second-factor methods, as the ``required`` member names them (and the request sends them)
OTP = "otp"
RECOVERY_CODE = "recovery_code"

#: refusals the person can fix by typing again; the others (a lock, a disabled account)
#: are ``access_denied``
_RETRYABLE = frozenset({"password_failure", "mfa_failure", "otp_replay", "recovery_failure"})
_HINTS = {
    "password_failure": "Check the user name and password, then try again.",
    "recovery_failure": "Each recovery code works once; check it, or use another one.",
}
_ASKS = {
    OTP: "This account needs a second factor: enter the 6-digit code your authenticator app "
    "shows now, or one of your recovery codes.",
    RECOVERY_CODE: "This account needs a second factor, and its authenticator code is paused "
    "after too many wrong codes: enter one of your recovery codes.",
}
_STEP_UP_ASKS = {
    OTP: "This needs a recent second factor: enter the 6-digit code your authenticator app "
    "shows now, or one of your recovery codes.",
    RECOVERY_CODE: "This needs a recent second factor, and your authenticator code is paused "
    "after too many wrong codes: enter one of your recovery codes.",
}
#: a value of ``known_client`` longer than this is ignored
MAX_KNOWN_CLIENT = known_clients.MAX_VALUE


class InvalidSession(OAuthError):
    """The auth_session is unknown, expired, spent, or another client's (draft §5.2.2.1)."""

    oauth_error = "invalid_session"


@dataclass(frozen=True)
class _Context:
    auth: Authority
    request: Request
    tenant: Tenant
    client: Client
    issuer: str
    now: float


# credentials are kept out of every repr (L3)
@dataclass(frozen=True)
class _Password:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class _SecondFactor:
    auth_session: str = field(repr=False)
    otp: str = field(repr=False)
    recovery_code: str = field(repr=False)


@dataclass(frozen=True)
class _StepUp:
    """A step-up of a sign-in, named by the auth_session of its token response."""

    auth_session: str = field(repr=False)


def authorize_challenge(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    if auth.housekeeping.due():
        with auth.store.begin() as conn:
            housekeeping.purge_expired(conn, now)
    issuer: str | None = None
    try:
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            issuer = issuer_of(request, tenant)
            client = _first_party_client(auth, conn, tenant, request, form)
            step = _step(form)
        ctx = _Context(auth, request, tenant, client, issuer, now)
        if isinstance(step, _Password):
            return _password_step(ctx, form, step)
        if isinstance(step, _StepUp):
            return _step_up_step(ctx, form, step)
        return _second_factor_step(ctx, form, step)
    except signin.Throttled as exc:
        return _throttled(exc, issuer)
    except BastionError as exc:
        return _error(exc, issuer)


# -- the steps ---------------------------------------------------------------------------


def _attempt(ctx: _Context, form: dict[str, Any], user_id: str | None) -> signin.Attempt:
    """Who is trying: the address, and whether this client signed the user in before."""
    value = str(form.get("known_client") or "")[:MAX_KNOWN_CLIENT]
    known = known_clients.knows(ctx.auth.keyring, ctx.tenant.id, user_id, value, ctx.now)
    return signin.Attempt(
        ctx.tenant,
        client_address(ctx.request),
        known=known,
        client_id=ctx.client.client_id,
        flow=FLOW,
    )


def _password_step(ctx: _Context, form: dict[str, Any], step: _Password) -> Response:
    wanted = _sign_in_request(ctx, form)
    with ctx.auth.store.begin() as conn:
        candidate = find_user(conn, ctx.tenant.id, step.username)
        attempt = _attempt(ctx, form, candidate.id if candidate else None)
        signin.check_password_throttle(conn, attempt, upn=step.username, now=ctx.now)
    # Argon2id runs between transactions, so a sign-in never holds a database lock for it.
    verdict = signin.verify_password(ctx.auth, candidate, step.password)
    with ctx.auth.store.begin() as conn:
        try:
            user = signin.check_password(
                ctx.auth, conn, attempt, upn=step.username, verdict=verdict, now=ctx.now
            )
        except SignInFailed as exc:
            return _refusal(ctx, exc)
        if not signin.needs_second_factor(conn, user):
            return _signed_in(conn, ctx, user, ["pwd"], wanted)
        if factor_store.has_factor(conn, user.id):
            return _ask_second_factor(conn, ctx, user, wanted, _ASKS)
        return _no_factor(ctx)


def _ask_second_factor(
    conn: Connection,
    ctx: _Context,
    user: User,
    wanted: SignInRequest,
    asks: dict[str, str],
    *,
    session_id: str | None = None,
    handle: str | None = None,
) -> Response:
    """The 403 that asks for the user's second factor (the words of ``asks``), with a new
    auth_session for ``wanted``; a step-up names the sign-in it renews and its handle."""
    required = _open_method(conn, ctx, user, first=OTP) or OTP
    value = challenge_sessions.issue(
        ctx.auth,
        conn,
        tenant_id=ctx.tenant.id,
        user_id=user.id,
        request=wanted,
        expires_at=ctx.now + challenge_sessions.LIFETIME,
        now=ctx.now,
        session_id=session_id,
        handle=handle,
    )
    return _answer(
        ctx.issuer,
        403,
        {
            "error": "insufficient_authorization",
            "error_description": asks[required],
            "auth_session": value,
            "required": required,
        },
    )


def _no_factor(ctx: _Context) -> Response:
    """An account that needs a second factor and has none registered: registering one
    happens in a browser, where the tenant allows it."""
    if "totp" not in ctx.tenant.policy.allowed_methods:
        return _answer(
            ctx.issuer,
            400,
            {
                "error": "access_denied",
                "error_description": "Your account needs a second factor, but this tenant "
                "allows no method you can register. Ask an administrator to allow the "
                "authenticator app (TOTP).",
            },
        )
    sign_in_uri = f"{ctx.issuer}/login"
    return _answer(
        ctx.issuer,
        403,
        {
            "error": "redirect_to_web",
            "error_description": "This account must register an authenticator app before "
            f"it can sign in, and that is done in a browser. Open {sign_in_uri}, sign in "
            "and register the app, then sign in here again.",
            "sign_in_uri": sign_in_uri,
        },
    )


def _step_up_step(ctx: _Context, form: dict[str, Any], step: _StepUp) -> Response:
    """The first request of a step-up: the second factor is asked for the session the
    auth_session names, whatever ``max_age`` and ``acr_values`` say (they are checked, and
    the session is always refreshed, so the answer meets any of them)."""
    wanted = _sign_in_request(ctx, form)
    parse_step_up(form.get("max_age"), form.get("acr_values"))
    with ctx.auth.store.begin() as conn:
        handle = challenge_sessions.find_handle(
            ctx.auth, conn, ctx.tenant.id, step.auth_session, ctx.now
        )
        if handle is None or handle.client_id != ctx.client.client_id:
            raise _invalid_session()
        session = _alive(conn, ctx, handle.session_id, handle.user_id)
        user = _user(conn, ctx.tenant, handle.user_id)
        if session is None or user is None:
            raise _invalid_session()
        if not user.enabled:
            return _disabled(conn, ctx, user)
        if not factor_store.has_factor(conn, user.id):
            if not signin.needs_second_factor(conn, user):
                return _answer(
                    ctx.issuer,
                    400,
                    {
                        "error": "access_denied",
                        "error_description": "This account has no second factor, so its "
                        "sign-in cannot be stepped up. Ask an administrator to enable MFA "
                        "for it.",
                    },
                )
            return _no_factor(ctx)
        return _ask_second_factor(
            conn, ctx, user, wanted, _STEP_UP_ASKS, session_id=session.id, handle=handle.key
        )


def _second_factor_step(ctx: _Context, form: dict[str, Any], step: _SecondFactor) -> Response:
    candidate: factor_store.RecoveryCandidate | None = None
    kind = throttle.RECOVERY_CODE if step.recovery_code else throttle.OTP
    with ctx.auth.store.begin() as conn:
        pending = _live(conn, ctx, step.auth_session)
        _check_follow_up(form, pending)
        user = _user(conn, ctx.tenant, pending.user_id)
        if user is None:
            raise _invalid_session()
        attempt = _attempt(ctx, form, user.id)
        # before the code is looked at (and before a recovery code's Argon2id work); the
        # auth_session is not spent, so the same one works once the wait is over
        signin.check_factor_throttle(conn, attempt, user, kind=kind, now=ctx.now)
        if step.recovery_code:
            candidate = factor_store.find_recovery_code(
                conn, user_id=pending.user_id, code=step.recovery_code
            )
    # the same Argon2id cost whether or not the typed code names a stored one; no lock held
    matched = factor_store.check_recovery_hash(ctx.auth.hasher, candidate) if candidate else False
    with ctx.auth.store.begin() as conn:
        pending = _live(conn, ctx, step.auth_session)
        if not challenge_sessions.spend(conn, pending):
            raise _invalid_session()
        user = _user(conn, ctx.tenant, pending.user_id)
        if user is None:
            raise _invalid_session()
        stepping: SignInSession | None = None
        if pending.session_id is not None:
            stepping = _alive(conn, ctx, pending.session_id, user.id)
            if stepping is None:
                raise _invalid_session()
        if not user.enabled:
            return _disabled(conn, ctx, user)
        tried = RECOVERY_CODE if candidate is not None else OTP
        try:
            if candidate is not None:
                signin.check_recovery_code(
                    ctx.auth,
                    conn,
                    attempt,
                    user,
                    candidate=candidate,
                    matched=matched,
                    now=ctx.now,
                )
                amr = ["pwd", "mfa"]
            else:
                signin.check_totp(ctx.auth, conn, attempt, user, code=step.otp, now=ctx.now)
                amr = list(TOTP_AMR)
        except signin.Throttled:
            raise
        except SignInFailed as exc:
            # The sign-in goes on under a new auth_session (same expiry) while a method is open.
            method = _open_method(conn, ctx, user, first=tried)
            if method is None or pending.expires_at <= ctx.now:
                return _ended(ctx, exc)
            value = challenge_sessions.issue(
                ctx.auth,
                conn,
                tenant_id=ctx.tenant.id,
                user_id=user.id,
                request=pending.request,
                expires_at=pending.expires_at,
                now=ctx.now,
                session_id=pending.session_id,
                handle=pending.handle,
            )
            if exc.extra.get("reason") in _RETRYABLE:
                return _refusal(ctx, exc, auth_session=value, required=method)
            return _answer(
                ctx.issuer,
                403,
                {
                    "error": "insufficient_authorization",
                    "error_description": _description(exc),
                    "auth_session": value,
                    "required": method,
                },
            )
        if stepping is not None:
            return _stepped_up(conn, ctx, user, stepping, amr, pending)
        return _signed_in(conn, ctx, user, amr, pending.request)


def _stepped_up(
    conn: Connection,
    ctx: _Context,
    user: User,
    session: SignInSession,
    amr: list[str],
    pending: AuthSession,
) -> Response:
    """RFC 9470 through the auth_session of a token response: the same sign-in session,
    its second factor (and so ``auth_time``, ``mfa_time`` and ``acr``) renewed, as the
    pages' step-up renews it; a code for what the step-up asked."""
    method = "otp" if "otp" in amr else "mfa"
    record_second_factor(conn, session, method, ctx.now)
    events.record(
        conn,
        tenant_id=ctx.tenant.id,
        type="sign_in.step_up",
        outcome="success",
        now=ctx.now,
        actor_id=user.id,
        actor_name=user.upn,
        client_id=ctx.client.client_id,
        session_id=session.id,
        amr=amr,
        flow=FLOW,
    )
    if pending.handle is not None:
        # the token response for this code carries the next auth_session
        challenge_sessions.drop_handle(conn, pending.handle)
    return _code(conn, ctx, pending.request, session.id)


def _signed_in(
    conn: Connection, ctx: _Context, user: User, amr: list[str], wanted: SignInRequest
) -> Response:
    """A session exactly as the pages open one, and a code for what the client asked."""
    session = create_session(conn, tenant_id=ctx.tenant.id, user_id=user.id, amr=amr, now=ctx.now)
    signin.record_success(
        conn,
        ctx.tenant,
        user,
        amr=amr,
        session_id=session.id,
        now=ctx.now,
        client_id=ctx.client.client_id,
        flow=FLOW,
    )
    # the client shows this next time with the user's password: it skips the address throttle
    known = known_clients.remember(ctx.auth.keyring, ctx.tenant.id, user.id, None, ctx.now)
    return _code(conn, ctx, wanted, session.id, known_client=known)


def _code(
    conn: Connection,
    ctx: _Context,
    wanted: SignInRequest,
    session_id: str,
    **more: str,
) -> Response:
    """The success answer: an authorization code of ``session_id`` for what was asked."""
    code = issue_code(
        ctx.auth,
        conn,
        tenant=ctx.tenant,
        client_id=wanted.client_id,
        redirect_uri=NO_REDIRECT_URI,
        code_challenge=wanted.code_challenge,
        session_id=session_id,
        scopes=wanted.scopes,
        resource=wanted.resource,
        nonce=wanted.nonce,
        now=ctx.now,
    )
    return _answer(ctx.issuer, 200, {"authorization_code": code, **more})


# -- checks ------------------------------------------------------------------------------


def _first_party_client(
    auth: Authority, conn: Connection, tenant: Tenant, request: Request, form: dict[str, Any]
) -> Client:
    """The client, authenticated as at the token endpoint (draft §4.1), and first-party."""
    client = request_client(auth, conn, tenant, request, form)
    if not client.first_party:
        raise UnauthorizedClient(
            "This endpoint is only for Bastion's own first-party clients.",
            hint="Sign in through the browser (authorization code with PKCE) or with the "
            "device code grant.",
        )
    if not client.allows_grant(GRANT_AUTHORIZATION_CODE):
        raise UnauthorizedClient("This client may not use the authorization code grant.")
    return client


def _step(form: dict[str, Any]) -> _Password | _SecondFactor | _StepUp:
    """Which step the request is: the password, a second factor for an auth_session, or
    (an auth_session alone) the start of a step-up."""
    session = str(form.get("auth_session") or "")
    otp = str(form.get("otp") or "").strip()
    recovery = str(form.get("recovery_code") or "").strip()
    username = str(form.get("username") or "")[:320]
    password = str(form.get("password") or "")
    if session:
        if username or password:
            raise InvalidRequest(
                "username and password belong to the first request only.",
                hint="With auth_session, send otp or recovery_code.",
            )
        if otp and recovery:
            raise InvalidRequest("With auth_session, send exactly one of otp and recovery_code.")
        if not otp and not recovery:
            return _StepUp(session)
        return _SecondFactor(session, otp, recovery)
    if otp or recovery:
        raise InvalidRequest(
            "otp and recovery_code go with the auth_session of the previous answer.",
            hint="Start with username and password.",
        )
    if not username.strip() or not password:
        raise InvalidRequest("username and password are required.")
    return _Password(username, password)


def _sign_in_request(ctx: _Context, form: dict[str, Any]) -> SignInRequest:
    """The authorization request parameters of the first request (draft §5.1)."""
    response_type = form.get("response_type")
    if response_type is not None and response_type != "code":
        raise UnsupportedResponseType("response_type must be code, or left out.")
    challenge = pkce.check_challenge(form.get("code_challenge"), form.get("code_challenge_method"))
    scope = parse_scope_request(
        form.get("scope"), form.get("resource_list") or [], published_audiences(ctx.request)
    )
    nonce = str(form["nonce"]) if form.get("nonce") else None
    if nonce is not None and (has_control(nonce) or len(nonce) > MAX_NONCE):
        raise InvalidRequest(
            f"nonce may not contain control characters or be longer than {MAX_NONCE}."
        )
    return SignInRequest(
        client_id=ctx.client.client_id,
        code_challenge=challenge,
        scopes=scope.oidc_scopes,
        resource=scope.audience,
        nonce=nonce,
    )


def _check_follow_up(form: dict[str, Any], pending: AuthSession) -> None:
    """A later request may repeat the PKCE challenge, never change it. (Its scope and
    resource are not read: the code is issued for the first request's.)"""
    sent = form.get("code_challenge")
    if sent is not None and sent != pending.request.code_challenge:
        raise InvalidRequest(
            "code_challenge differs from the first request of this sign-in.",
            hint="Send the same code_challenge, or leave it out after the first request.",
        )


def _invalid_session() -> InvalidSession:
    return InvalidSession(
        "The auth_session is not valid: it has expired, was already used, or belongs to "
        "another sign-in.",
        hint="Start again with the user name and password.",
    )


def _live(conn: Connection, ctx: _Context, value: str) -> AuthSession:
    pending = challenge_sessions.find(ctx.auth, conn, ctx.tenant.id, value, ctx.now)
    if pending is None or pending.request.client_id != ctx.client.client_id:
        raise _invalid_session()
    return pending


def _alive(conn: Connection, ctx: _Context, session_id: str, user_id: str) -> SignInSession | None:
    """The sign-in session a step-up refreshes, while it lasts and is this user's."""
    session = find_session(conn, ctx.tenant.id, session_id)
    if session is None or session.user_id != user_id:
        return None
    if end_reason(session, ctx.tenant.policy, ctx.now):
        return None
    return session


def _disabled(conn: Connection, ctx: _Context, user: User) -> Response:
    events.record(
        conn,
        tenant_id=ctx.tenant.id,
        type="sign_in.disabled",
        outcome="failure",
        now=ctx.now,
        actor_id=user.id,
        actor_name=user.upn,
        client_id=ctx.client.client_id,
        flow=FLOW,
    )
    return _answer(
        ctx.issuer,
        400,
        {
            "error": "access_denied",
            "error_description": "This account is disabled. Ask an administrator to enable it.",
        },
    )


def _user(conn: Connection, tenant: Tenant, user_id: str) -> User | None:
    try:
        return get_user(conn, tenant.id, user_id)
    except NotFound:
        return None


def _open_method(conn: Connection, ctx: _Context, user: User, *, first: str) -> str | None:
    """The second-factor method to ask for next: ``first`` if it may be tried now, else the
    other one if it may; None when neither may (until a block lifts)."""
    has_totp = factor_store.find_totp(conn, ctx.auth.keyring, user.id) is not None
    unused = conn.execute(
        select(recovery_codes.c.id).where(
            recovery_codes.c.user_id == user.id, recovery_codes.c.used_at.is_(None)
        )
    ).first()
    is_open = {
        OTP: has_totp and signin.factor_open(conn, ctx.tenant, user, throttle.OTP, ctx.now),
        RECOVERY_CODE: unused is not None
        and signin.factor_open(conn, ctx.tenant, user, throttle.RECOVERY_CODE, ctx.now),
    }
    second = RECOVERY_CODE if first == OTP else OTP
    return next((method for method in (first, second) if is_open[method]), None)


# -- answers -----------------------------------------------------------------------------


def _ascii(text: str) -> str:
    """RFC 6749 §5.2 and the draft: error text within %x20-21 / %x23-5B / %x5D-7E."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


def _answer(
    issuer: str | None, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    if "error_description" in body:
        body["error_description"] = _ascii(body["error_description"])
    if issuer is not None:
        body["iss"] = issuer
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _refusal(ctx: _Context, exc: SignInFailed, **more: str) -> JSONResponse:
    """A credential refused: ``invalid_grant`` when typing again can help (with an
    auth_session and ``required`` when the sign-in goes on), else ``access_denied``, which
    always ends the sign-in."""
    retry = exc.extra.get("reason") in _RETRYABLE
    return _answer(
        ctx.issuer,
        400,
        {
            "error": "invalid_grant" if retry else "access_denied",
            "error_description": _description(exc),
            **more,
        },
    )


def _description(exc: SignInFailed) -> str:
    hint = exc.hint or _HINTS.get(str(exc.extra.get("reason")), "")
    return f"{exc.detail} {hint}".strip()


def _ended(ctx: _Context, exc: SignInFailed) -> JSONResponse:
    """A wrong second factor with no method left to try now: the sign-in ends, and the
    description says how long to wait (the password was right: the account is no secret)."""
    return _answer(
        ctx.issuer, 400, {"error": "access_denied", "error_description": _description(exc)}
    )


def _throttled(exc: signin.Throttled, issuer: str | None) -> JSONResponse:
    """429: not checked; ``Retry-After`` says when it may be (RFC 6585 section 4)."""
    return _answer(
        issuer,
        429,
        {"error": "temporarily_unavailable", "error_description": str(exc)},
        headers={"Retry-After": str(exc.retry_after)},
    )


def _error(exc: BastionError, issuer: str | None) -> JSONResponse:
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="bastion"'
    code = exc.oauth_error or ("server_error" if exc.status >= 500 else "invalid_request")
    return _answer(
        issuer, exc.status, {"error": code, "error_description": str(exc)}, headers=headers
    )


routes = [Route(PATH, in_thread(authorize_challenge), methods=["POST"])]
