"""The sign-in pages: password, second factor, and factor registration.

Server-rendered, usable without JavaScript. Every POST carries the session-bound CSRF token
and answers with a 303 on success. Each step that authenticates replaces the cookie (S3).

Every POST makes its cheap checks (tenant, web session, CSRF, the throttle) before any
Argon2id work; a blocked attempt is answered 429 with ``Retry-After`` and not checked (A3).
A successful sign-in marks the browser as known to that user
(:mod:`bastion.authority.known_clients`), which exempts it from the per-address throttle.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority import factor_store, known_clients, notifications, signin, throttle
from bastion.authority.factors import totp
from bastion.authority.parts import Authority
from bastion.authority.sign_in_sessions import (
    create_session,
    end_reason,
    find_session,
    record_second_factor,
)
from bastion.core import qr
from bastion.core.errors import SignInFailed
from bastion.directory.tenants import Tenant
from bastion.directory.users import User, find_user, get_user, set_mfa_state
from bastion.http import browser_sessions
from bastion.http.browser_sessions import WebSession
from bastion.http.endpoint_support import (
    authority_of,
    client_address,
    in_thread,
    load_tenant,
    render,
)
from bastion.http.sign_in_flow import finish, form_target, redirect
from bastion.store import housekeeping

TOTP_AMR = ["pwd", "otp", "mfa"]


def _context(auth: Authority, tenant: Tenant, ws: WebSession, **extra: Any) -> dict[str, Any]:
    return {"tenant": tenant, "csrf": browser_sessions.csrf_token(auth, ws), **extra}


def _cookie(tenant: Tenant, ws: WebSession) -> tuple[str, str]:
    return browser_sessions.cookie_name(tenant), ws.cookie


def _signed_in(
    auth: Authority,
    conn: Any,
    tenant: Tenant,
    ws: WebSession,
    user: User,
    amr: list[str],
    now: float,
) -> WebSession:
    """Open the sign-in session and hand the browser a new cookie for it."""
    session = create_session(conn, tenant_id=tenant.id, user_id=user.id, amr=amr, now=now)
    signin.record_success(conn, tenant, user, amr=amr, session_id=session.id, now=now)
    return browser_sessions.save(
        auth,
        conn,
        tenant,
        now,
        previous=ws,
        lifetime=tenant.policy.session_lifetime,
        stage="authenticated",
        user_id=user.id,
        session_id=session.id,
        pending_secret=None,
    )


def attempt_of(
    auth: Authority, request: Request, tenant: Tenant, user_id: str | None, now: float
) -> signin.Attempt:
    """Who is trying from this browser: its address, and whether it is known to the user."""
    cookie = request.cookies.get(known_clients.cookie_name(tenant.name))
    known = known_clients.knows(auth.keyring, tenant.id, user_id, cookie, now)
    return signin.Attempt(tenant, client_address(request), known=known)


def remember_browser(
    auth: Authority, request: Request, tenant: Tenant, user: User, now: float, response: Response
) -> Response:
    """Mark the browser as one that signed this user in (it skips the address throttle)."""
    name = known_clients.cookie_name(tenant.name)
    value = known_clients.remember(auth.keyring, tenant.id, user.id, request.cookies.get(name), now)
    response.set_cookie(
        name,
        value,
        max_age=known_clients.LIFETIME,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


def throttled(response: Response, exc: signin.Throttled) -> Response:
    """A 429 page says when to come back in ``Retry-After`` too (RFC 9110 section 10.2.3)."""
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def login_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    if auth.housekeeping.due():
        with auth.store.begin() as conn:
            housekeeping.purge_expired(conn, now)
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
        if ws is None or ws.stage != "anonymous":
            continuation = ws.continuation if ws else None
            ws = browser_sessions.start_over(
                auth, conn, tenant, now, previous=ws, continuation=continuation
            )
        target = form_target(conn, tenant, ws, now)
    return render(
        "login.html", _context(auth, tenant, ws), cookie=_cookie(tenant, ws), form_target=target
    )


def login_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    upn = str(form.get("username", ""))[:320]
    try:
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            ws = browser_sessions.check_csrf(
                auth, browser_sessions.load(auth, conn, tenant, request, now), form
            )
            target = form_target(conn, tenant, ws, now)
            candidate = find_user(conn, tenant.id, upn) if upn.strip() else None
            attempt = attempt_of(auth, request, tenant, candidate.id if candidate else None, now)
            signin.check_password_throttle(conn, attempt, upn=upn, now=now)
    except signin.Throttled as exc:
        context = _context(auth, tenant, ws, error=exc.detail, hint=exc.hint, username=upn)
        return throttled(render("login.html", context, status=429, form_target=target), exc)
    # Argon2id runs between transactions, so a sign-in never holds a database lock for it.
    verdict = signin.verify_password(auth, candidate, str(form.get("password", "")))
    try:
        with auth.store.begin() as conn:
            ws = browser_sessions.check_csrf(
                auth, browser_sessions.load(auth, conn, tenant, request, now), form
            )
            user = signin.check_password(auth, conn, attempt, upn=upn, verdict=verdict, now=now)
            if not signin.needs_second_factor(conn, user):
                ws = _signed_in(auth, conn, tenant, ws, user, ["pwd"], now)
                response = finish(auth, conn, request, tenant, ws, now, _cookie(tenant, ws))
                return remember_browser(auth, request, tenant, user, now, response)
            if factor_store.has_factor(conn, user.id):
                ws = browser_sessions.save(
                    auth, conn, tenant, now, previous=ws, stage="password", user_id=user.id
                )
                return redirect(f"/t/{tenant.name}/login/mfa", _cookie(tenant, ws))
            if "totp" not in tenant.policy.allowed_methods:
                raise SignInFailed(
                    "Your account needs a second factor, but this tenant allows no method "
                    "you can register.",
                    hint="Ask an administrator to allow the authenticator app (TOTP).",
                )
            ws = browser_sessions.save(
                auth, conn, tenant, now, previous=ws, stage="enroll", user_id=user.id
            )
            return redirect(f"/t/{tenant.name}/login/enroll", _cookie(tenant, ws))
    except SignInFailed as exc:
        return render(
            "login.html",
            _context(auth, tenant, ws, error=exc.detail, hint=exc.hint, username=upn),
            status=401,
            form_target=target,
        )


def mfa_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
        if ws is None or ws.stage not in ("password", "stepup"):
            return redirect(f"/t/{tenant.name}/login")
        user = get_user(conn, tenant.id, ws.user_id or "")
        target = form_target(conn, tenant, ws, now)
    return render(
        "mfa.html",
        _context(auth, tenant, ws, user=user, stepup=ws.stage == "stepup"),
        form_target=target,
    )


def mfa_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    code = str(form.get("code", "")).strip()
    recovery_code = str(form.get("recovery_code", "")).strip()
    kind = throttle.RECOVERY_CODE if recovery_code else throttle.OTP
    candidate, matched = None, False
    user: User | None = None
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        target = form_target(
            conn, tenant, browser_sessions.load(auth, conn, tenant, request, now), now
        )
    try:
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            ws = browser_sessions.check_csrf(
                auth, browser_sessions.load(auth, conn, tenant, request, now), form
            )
            if ws.stage not in ("password", "stepup") or ws.user_id is None:
                return redirect(f"/t/{tenant.name}/login")
            user = get_user(conn, tenant.id, ws.user_id)
            attempt = attempt_of(auth, request, tenant, user.id, now)
            signin.check_factor_throttle(conn, attempt, user, kind=kind, now=now)
            if recovery_code:
                candidate = factor_store.find_recovery_code(
                    conn, user_id=user.id, code=recovery_code
                )
        # the Argon2id work of a recovery code, only once the throttle let it through
        if candidate is not None:
            matched = factor_store.check_recovery_hash(auth.hasher, candidate)
        with auth.store.begin() as conn:
            ws = browser_sessions.check_csrf(
                auth, browser_sessions.load(auth, conn, tenant, request, now), form
            )
            if ws.stage not in ("password", "stepup") or ws.user_id != user.id:
                return redirect(f"/t/{tenant.name}/login")
            if candidate is not None:
                signin.check_recovery_code(
                    auth, conn, attempt, user, candidate=candidate, matched=matched, now=now
                )
                method = "mfa"
            else:
                signin.check_totp(auth, conn, attempt, user, code=code, now=now)
                method = "otp"
            if ws.stage == "stepup" and ws.session_id:
                session = find_session(conn, tenant.id, ws.session_id)
                if session is None or end_reason(session, tenant.policy, now):
                    return redirect(f"/t/{tenant.name}/login")
                record_second_factor(conn, session, method, now)
                events.record(
                    conn,
                    tenant_id=tenant.id,
                    type="sign_in.step_up",
                    outcome="success",
                    now=now,
                    actor_id=user.id,
                    actor_name=user.upn,
                    session_id=session.id,
                )
                ws = browser_sessions.save(
                    auth,
                    conn,
                    tenant,
                    now,
                    previous=ws,
                    lifetime=tenant.policy.session_lifetime,
                    stage="authenticated",
                )
            else:
                amr = TOTP_AMR if method == "otp" else ["pwd", "mfa"]
                ws = _signed_in(auth, conn, tenant, ws, user, amr, now)
            response = finish(auth, conn, request, tenant, ws, now, _cookie(tenant, ws))
            return remember_browser(auth, request, tenant, user, now, response)
    except SignInFailed as exc:
        page = render(
            "mfa.html",
            _context(
                auth,
                tenant,
                ws,
                user=user,
                error=exc.detail,
                hint=exc.hint,
                stepup=ws.stage == "stepup",
            ),
            status=exc.status,
            form_target=target,
        )
        return throttled(page, exc) if isinstance(exc, signin.Throttled) else page


def _pending_secret(
    auth: Authority, conn: Any, tenant: Tenant, ws: WebSession
) -> tuple[WebSession, bytes]:
    if ws.pending_secret is not None:
        return ws, factor_store.open_seed(auth.keyring, ws.pending_secret, ws.user_id or "")
    secret = totp.generate_secret()
    sealed = factor_store.seal_seed(auth.keyring, secret, ws.user_id or "")
    return browser_sessions.set_pending_secret(auth, conn, ws, sealed), secret


def _enroll_context(
    auth: Authority, tenant: Tenant, ws: WebSession, user: User, secret: bytes, **extra: Any
) -> dict[str, Any]:
    uri = totp.provisioning_uri(secret, account=user.upn, issuer=f"Bastion {tenant.display_name}")
    return _context(
        auth,
        tenant,
        ws,
        user=user,
        qr_svg=qr.svg(uri),
        otpauth_uri=uri,
        secret=totp.secret_to_base32(secret),
        **extra,
    )


def enroll_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
        if ws is None or ws.stage != "enroll" or ws.user_id is None:
            return redirect(f"/t/{tenant.name}/login")
        user = get_user(conn, tenant.id, ws.user_id)
        ws, secret = _pending_secret(auth, conn, tenant, ws)
    return render("enroll.html", _enroll_context(auth, tenant, ws, user, secret))


def enroll_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    # The cheap checks (tenant, web session at the enroll stage, CSRF, the code) come first:
    # the ten Argon2id hashes of the recovery codes are only made for a request that passed
    # them, and outside any transaction, so they hold no database lock.
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.check_csrf(
            auth, browser_sessions.load(auth, conn, tenant, request, now), form
        )
        if ws.stage != "enroll" or ws.user_id is None:
            return redirect(f"/t/{tenant.name}/login")
        user = get_user(conn, tenant.id, ws.user_id)
        ws, secret = _pending_secret(auth, conn, tenant, ws)
        step = totp.matching_step(secret, str(form.get("code", "")), now)
        if step is None:
            return render(
                "enroll.html",
                _enroll_context(
                    auth,
                    tenant,
                    ws,
                    user,
                    secret,
                    error="That code is not correct.",
                    hint="Enter the 6-digit code the app shows for Bastion now.",
                ),
                status=400,
            )
    prepared = factor_store.prepare_recovery_codes(auth.hasher)
    with auth.store.begin() as conn:
        ws = browser_sessions.check_csrf(
            auth, browser_sessions.load(auth, conn, tenant, request, now), form
        )
        if ws.stage != "enroll" or ws.user_id != user.id or ws.pending_secret is None:
            return redirect(f"/t/{tenant.name}/login")
        factor_store.add_totp(
            conn,
            auth.keyring,
            tenant_id=tenant.id,
            user_id=user.id,
            secret=secret,
            accepted_step=step,
            now=now,
        )
        if user.mfa_state == "enabled":
            set_mfa_state(conn, user, "enforced", reset_factors=False)
        factor_store.store_recovery_codes(
            conn, prepared, tenant_id=tenant.id, user_id=user.id, now=now
        )
        codes = prepared.codes
        notifications.notify(conn, tenant.id, user, "factor_registered", now, method="totp")
        ws = _signed_in(auth, conn, tenant, ws, user, TOTP_AMR, now)
    response = render(
        "recovery_codes.html",
        _context(auth, tenant, ws, codes=codes),
        cookie=_cookie(tenant, ws),
    )
    return remember_browser(auth, request, tenant, user, now, response)


def continue_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
        if ws is None or ws.stage != "authenticated" or ws.session_id is None:
            return redirect(f"/t/{tenant.name}/login")
        session = find_session(conn, tenant.id, ws.session_id)
        if session is None or end_reason(session, tenant.policy, now):
            return redirect(f"/t/{tenant.name}/login")
        return finish(auth, conn, request, tenant, ws, now, None)


routes = [
    Route("/t/{tenant}/login", in_thread(login_page), methods=["GET"]),
    Route("/t/{tenant}/login", in_thread(login_submit), methods=["POST"]),
    Route("/t/{tenant}/login/mfa", in_thread(mfa_page), methods=["GET"]),
    Route("/t/{tenant}/login/mfa", in_thread(mfa_submit), methods=["POST"]),
    Route("/t/{tenant}/login/enroll", in_thread(enroll_page), methods=["GET"]),
    Route("/t/{tenant}/login/enroll", in_thread(enroll_submit), methods=["POST"]),
    Route("/t/{tenant}/login/continue", in_thread(continue_page), methods=["GET"]),
]
