"""The token, device authorization, revocation and introspection endpoints.

The token endpoint shares the sign-in throttle's counter per source address (A3,
:mod:`bastion.authority.throttle`): a refused code, device code, refresh token or client
secret (``invalid_grant``, ``invalid_client``) counts against the address. While the address
is blocked there (by this endpoint, the sign-in pages, the challenge endpoint or the device
pages), a request that presents a client secret, the one credential here that can be
guessed, is answered 429 with ``Retry-After``, unchecked. Codes, device codes and refresh
tokens carry 256 random bits: they are still checked, so that a neighbour behind the same
address cannot stop a known client redeeming its code or renewing its sign-in (decision
0019). An application's client assertion (``private_key_jwt``, decisions 0036 and 0037)
cannot be guessed either: it is checked while the address is blocked, and a refused one
counts against the address and is audited. The device authorization endpoint
issues at most :data:`MAX_DEVICE_CODES` codes per address and tenant in
:data:`DEVICE_CODE_WINDOW` seconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority import limits, throttle
from bastion.authority.client_assertions import (
    AssertionRefused,
    AuthenticatedApplication,
    authenticate_application,
    federated_issuer,
    parse_assertion,
    read_assertion,
    record_refusal,
)
from bastion.authority.grants import device_code
from bastion.authority.grants.grant import TokenRequest
from bastion.authority.grants.table import grant_for
from bastion.authority.parts import Authority
from bastion.authority.sign_in_sessions import end_reason, find_session
from bastion.authority.token_validation import unverified_claim, validate_access_token
from bastion.authority.tokens import refresh_token_hash, revoke_family
from bastion.core.errors import (
    BastionError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidToken,
    NotFound,
    UnauthorizedClient,
)
from bastion.directory.applications import normalize_app_id
from bastion.directory.tenants import Tenant
from bastion.directory.users import get_user
from bastion.http import auth_challenge
from bastion.http.discovery_endpoints import published_audiences
from bastion.http.endpoint_support import (
    NO_STORE,
    FastJSONResponse,
    authority_of,
    basic_credentials,
    client_address,
    in_thread,
    issuer_of,
    load_tenant,
    oauth_error,
    read_form,
    request_client,
)
from bastion.store import housekeeping
from bastion.store.schema import refresh_tokens, revoked_access_tokens

#: device codes one address may ask for per tenant and window
MAX_DEVICE_CODES = 30
DEVICE_CODE_WINDOW = 900


class Throttled(BastionError):
    """429 ``temporarily_unavailable``: the address is blocked; nothing was checked."""

    status = 429
    oauth_error = "temporarily_unavailable"


def _answer_error(exc: BastionError) -> Response:
    response = oauth_error(exc)
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.extra["retry_after"])
    return response


def _check_source(conn: Connection, tenant: Tenant, request: Request, now: float) -> None:
    key = throttle.source_key(tenant.id, client_address(request))
    blocked = throttle.check(conn, [key], now)
    if blocked is not None:
        raise Throttled(
            "Too many failed attempts from this address.",
            hint=f"Try again in {throttle.human_wait(blocked.retry_after)}.",
            keep_changes=True,
            retry_after=blocked.retry_after,
        )


def _presents_secret(request: Request, form: dict[str, Any]) -> bool:
    return basic_credentials(request) is not None or bool(form.get("client_secret"))


def _count_failure(
    conn: Connection,
    auth: Authority,
    tenant: Tenant,
    request: Request,
    now: float,
    refused: BastionError | None = None,
    form: dict[str, Any] | None = None,
) -> None:
    """A refused credential counts against the address, in a transaction of its own (the
    refusal's is rolled back); a refused application is audited there too (L1)."""
    throttle.fail(conn, auth.settings, throttle.source_key(tenant.id, client_address(request)), now)
    if isinstance(refused, AssertionRefused):
        client_id = str((form or {}).get("client_id") or "")
        record_refusal(conn, tenant.id, refused, client_id=client_id, now=now)


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return FastJSONResponse(body, status_code=status, headers=NO_STORE)


def _presents_assertion(form: dict[str, Any]) -> bool:
    return bool(form.get("client_assertion") or form.get("client_assertion_type"))


def _names_federated_issuer(form: dict[str, Any]) -> bool:
    """Whether the assertion may be an external issuer's token (a federated credential,
    decision 0037): its ``iss`` is not an appId. An application's own assertion names
    itself, and its keys are in the database already."""
    try:
        assertion = parse_assertion(str(form.get("client_assertion") or ""))
    except BastionError:
        return False
    return assertion.issuer is not None and normalize_app_id(assertion.issuer) is None


def _prefetch_federated_keys(auth: Authority, request: Request, form: dict[str, Any]) -> None:
    """Before the transaction opens: fetch the keys of the issuer of an application's
    federated credential, if the assertion is such a token (decision 0037). Only a
    registered issuer is ever fetched; any failure is left for the check to report."""
    client_id = str(form.get("client_id") or "")
    if not client_id or not form.get("client_assertion"):
        return
    try:
        assertion = parse_assertion(str(form["client_assertion"]))
        with auth.store.read() as conn:
            tenant = load_tenant(conn, request)
            issuer = federated_issuer(conn, tenant.id, client_id, assertion)
    except BastionError:
        return
    if issuer is not None:
        auth.federated_keys.prefetch(issuer, assertion.kid)


def _application(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    request: Request,
    form: dict[str, Any],
    now: float,
) -> AuthenticatedApplication:
    """An application's client authentication (RFC 7523 section 2.2): one method only
    (RFC 6749 section 2.3)."""
    if _presents_secret(request, form):
        raise InvalidRequest("Use one client authentication method: an assertion or a secret.")
    assertion = read_assertion(
        str(form.get("client_assertion_type") or ""), str(form.get("client_assertion") or "")
    )
    issuer = issuer_of(request, tenant)
    return authenticate_application(
        conn,
        tenant_id=tenant.id,
        client_id=str(form.get("client_id") or ""),
        assertion=assertion,
        audiences=(f"{issuer}/oauth2/token", issuer),
        source=client_address(request),
        now=now,
        federated_keys=auth.federated_keys,
    )


async def token(request: Request) -> Response:
    """RFC 6749 section 3.2. The grant is a unit of the store's writer queue: grants that
    arrive together commit together, and each answer leaves once its grant is durable. The
    event loop waits for it; no worker thread is held per request."""
    form = await read_form(request)
    auth = authority_of(request)
    now = auth.now()
    seen: list[Tenant] = []
    try:
        if _presents_assertion(form) and _names_federated_issuer(form):
            await run_in_threadpool(_prefetch_federated_keys, auth, request, form)
        body = await auth.writes.arun(lambda conn: _grant(auth, conn, request, form, now, seen))
        return _json(body)
    except (InvalidGrant, InvalidClient) as exc:
        if seen:
            tenant, refused = seen[0], exc
            await auth.writes.arun(
                lambda conn: _count_failure(conn, auth, tenant, request, now, refused, form)
            )
        return oauth_error(exc)
    except BastionError as exc:
        return _answer_error(exc)


def _grant(
    auth: Authority,
    conn: Connection,
    request: Request,
    form: dict[str, Any],
    now: float,
    seen: list[Tenant],
) -> dict[str, Any]:
    """One token request in ``conn``'s transaction; the tenant is put in ``seen`` as soon as
    it is known, so that a refused credential can be counted against its address."""
    tenant = load_tenant(conn, request)
    seen.append(tenant)
    application: AuthenticatedApplication | None = None
    if _presents_secret(request, form):
        _check_source(conn, tenant, request, now)
    if _presents_assertion(form):
        application = _application(auth, conn, tenant, request, form, now)
        client = application.client
    else:
        client = request_client(auth, conn, tenant, request, form)
    grant = grant_for(form.get("grant_type"))
    return grant.respond(
        TokenRequest(
            auth=auth,
            conn=conn,
            tenant=tenant,
            issuer=issuer_of(request, tenant),
            audiences=published_audiences(request),
            client=client,
            form=grant.declared(form),
            now=now,
            application=application,
        )
    )


def device_authorization(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    if auth.housekeeping.due():
        with auth.store.begin() as conn:
            housekeeping.purge_expired(conn, now)
    try:
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            _check_source(conn, tenant, request, now)
            client = request_client(auth, conn, tenant, request, form)
            _count_device_code(conn, tenant, request, now)
            body = device_code.start(
                auth,
                conn,
                tenant=tenant,
                client=client,
                scope=form.get("scope"),
                resources=form.get("resource_list") or [],
                audiences=published_audiences(request),
                verification_uri=f"{issuer_of(request, tenant)}/device",
                now=now,
                max_age=form.get("max_age"),
                acr_values=form.get("acr_values"),
            )
        return _json(body)
    except BastionError as exc:
        return _answer_error(exc)


def _count_device_code(conn: Connection, tenant: Tenant, request: Request, now: float) -> None:
    """RFC 8628 section 5.2: device codes are not handed out without limit. The first
    refusal of a window is audited (L1), not every one."""
    key = f"device_authorization:{tenant.id}:source:{client_address(request)}"
    issued = limits.hit(conn, tenant.id, key, window=DEVICE_CODE_WINDOW, now=now)
    if issued <= MAX_DEVICE_CODES:
        return
    wait = limits.retry_after(conn, key, window=DEVICE_CODE_WINDOW, now=now)
    if issued == MAX_DEVICE_CODES + 1:
        events.record(
            conn,
            tenant_id=tenant.id,
            type="rate_limit.device_authorization",
            outcome="denied",
            now=now,
            retry_after=wait,
        )
    raise Throttled(
        "Too many device sign-ins were started from this address.",
        hint=f"Try again in {throttle.human_wait(wait)}.",
        keep_changes=True,
        retry_after=wait,
    )


def revoke(request: Request, form: dict[str, Any]) -> Response:
    """RFC 7009: revoke a refresh token (its whole family) or an access token."""
    auth = authority_of(request)
    now = auth.now()
    try:
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            client = request_client(auth, conn, tenant, request, form)
            value = str(form.get("token", ""))
            if not value:
                raise InvalidRequest("token is required.")
            row = _refresh_token_row(auth, conn, tenant, value)
            if row is not None:
                if row.client_id != client.client_id:
                    raise UnauthorizedClient("The token was issued to another client.")
                revoke_family(conn, row.family_id, now)
                return _json({})
            claims = _access_token_claims(auth, conn, request, tenant, value, now)
            if claims is not None:
                if claims.get("client_id") != client.client_id:
                    raise UnauthorizedClient("The token was issued to another client.")
                _revoke_access_token(conn, tenant, claims)
        # Section 2.2: an unknown or already invalid token is answered with 200 too.
        return _json({})
    except BastionError as exc:
        return oauth_error(exc)


def _revoke_access_token(conn: Connection, tenant: Tenant, claims: dict[str, Any]) -> None:
    """Deny-list an access token's ``jti``; a token already on the list stays there and
    the revocation still succeeds (RFC 7009 section 2.2), even when two race."""
    jti = claims["jti"]
    listed = select(revoked_access_tokens.c.jti).where(revoked_access_tokens.c.jti == jti)
    if conn.execute(listed).first() is not None:
        return
    try:
        with conn.begin_nested():
            conn.execute(
                insert(revoked_access_tokens).values(
                    jti=jti, tenant_id=tenant.id, expires_at=claims["exp"]
                )
            )
    except IntegrityError:
        pass  # a concurrent revocation of the same token listed it first


def _refresh_token_row(auth: Authority, conn: Connection, tenant: Tenant, value: str) -> Any:
    """The stored refresh token of this tenant with this value, or None."""
    return conn.execute(
        select(refresh_tokens).where(
            refresh_tokens.c.token_hash == refresh_token_hash(auth.keyring, value),
            refresh_tokens.c.tenant_id == tenant.id,
        )
    ).first()


def _access_token_claims(
    auth: Authority, conn: Connection, request: Request, tenant: Tenant, value: str, now: float
) -> dict[str, Any] | None:
    """The claims of a valid access token of this tenant, for any of its audiences."""
    issuer = issuer_of(request, tenant)
    try:
        audience = unverified_claim(value, "aud")
        if audience not in (issuer, *published_audiences(request).values()):
            return None
        return validate_access_token(
            value,
            issuer=issuer,
            audience=audience,
            now=now,
            keys=lambda refresh: auth.keys.public_keys(conn, tenant.id, refresh=refresh),
        )
    except InvalidToken:
        return None


def introspect(request: Request, form: dict[str, Any]) -> Response:
    """RFC 7662: only authenticated (confidential) clients may ask."""
    auth = authority_of(request)
    now = auth.now()
    try:
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            if basic_credentials(request) is None and not form.get("client_secret"):
                raise InvalidClient("Introspection needs client authentication.")
            request_client(auth, conn, tenant, request, form, require_secret=True)
            value = str(form.get("token", ""))
            return _json(_introspect(auth, conn, request, tenant, value, now))
    except NotFound:
        return _json({"active": False})
    except BastionError as exc:
        return oauth_error(exc)


def _introspect(
    auth: Authority, conn: Connection, request: Request, tenant: Tenant, value: str, now: float
) -> dict[str, Any]:
    inactive = {"active": False}
    row = _refresh_token_row(auth, conn, tenant, value)
    if row is not None:
        if row.revoked_at is not None or row.used_at is not None:
            return inactive
        session_id = row.session_id
        answer: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "client_id": row.client_id,
            "scope": " ".join(row.scopes),
            "iss": issuer_of(request, tenant),
        }
    else:
        claims = _access_token_claims(auth, conn, request, tenant, value, now)
        if claims is None:
            return inactive
        revoked = conn.execute(
            select(revoked_access_tokens.c.jti).where(revoked_access_tokens.c.jti == claims["jti"])
        ).first()
        if revoked is not None:
            return inactive
        session_id = claims.get("sid", "")
        answer = {"active": True, "token_type": "Bearer", **claims}
    session = find_session(conn, tenant.id, session_id)
    if session is None or end_reason(session, tenant.policy, now):
        return inactive
    user = get_user(conn, tenant.id, session.user_id)
    if not user.enabled:
        return inactive
    answer.setdefault("sub", user.id)
    answer.setdefault("username", user.upn)
    return answer


routes = [
    Route("/t/{tenant}/oauth2/token", token, methods=["POST"]),
    Route("/t/{tenant}/oauth2/devicecode", in_thread(device_authorization), methods=["POST"]),
    Route("/t/{tenant}/oauth2/revoke", in_thread(revoke), methods=["POST"]),
    Route("/t/{tenant}/oauth2/introspect", in_thread(introspect), methods=["POST"]),
    # draft-ietf-oauth-first-party-apps: terminal sign-in for first-party clients
    *auth_challenge.routes,
]
