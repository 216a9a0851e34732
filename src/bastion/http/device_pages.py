"""The device verification pages (RFC 8628 section 3.3).

The person enters (or is handed) the user code, signs in, sees which application asks and
the code to compare with their device's screen, and approves or declines (T11). Wrong codes
are limited to :data:`MAX_WRONG_CODES` per code lifetime (T10): per signed-in person for a
browser that is signed in or has signed someone in before (its own person's count, so that
others' wrong codes from the same address never refuse its right one), and per source
address for any other browser. A wrong code also counts against the address in the throttle
the sign-in pages share (A3), and an address blocked there is refused here, unchecked.

A device code asked with ``max_age`` or ``acr_values`` (an RFC 9470 step-up) is approved only
with a sign-in that meets them: a browser whose sign-in is too old or too weak goes through
the second factor again (``/login/mfa``, as the authorization endpoint sends it) before the
confirmation page, and the tokens then carry the fresh ``auth_time`` and ``acr``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority import factor_store, known_clients, limits, signin, throttle
from bastion.authority.clients import find_client
from bastion.authority.grants import device_code
from bastion.authority.parts import Authority
from bastion.authority.sign_in_sessions import (
    SignInSession,
    age_of_sign_in,
    end_reason,
    find_session,
    needs_step_up,
)
from bastion.directory.tenants import Tenant
from bastion.http import browser_sessions
from bastion.http.browser_sessions import WebSession
from bastion.http.endpoint_support import (
    authority_of,
    client_address,
    in_thread,
    load_tenant,
    render,
)
from bastion.http.sign_in_flow import redirect

MAX_WRONG_CODES = 5


def _step_up(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    ws: WebSession,
    session: SignInSession,
    pending: device_code.PendingDevice,
    now: float,
) -> Response | None:
    """Where to send an approver whose sign-in does not meet the device's step-up, or A8
    (a role holder's sign-in has two factors); None when it does (or when nothing more can
    be asked: an account with no second factor and no role whose sign-in is recent enough)."""
    wanted = signin.required_acr_values(conn, session.user_id, pending.acr_values)
    if not needs_step_up(session, max_age=pending.max_age, acr_values=wanted, now=now):
        return None
    cookie = browser_sessions.cookie_name(tenant)
    if factor_store.has_factor(conn, session.user_id):
        # RFC 9470: the second factor again, not the password
        ws = browser_sessions.save(auth, conn, tenant, now, previous=ws, stage="stepup")
        return redirect(f"/t/{tenant.name}/login/mfa", (cookie, ws.cookie))
    # a role holder with no factor signs in again, and registers one on the way (A8)
    a8 = tuple(wanted) != tuple(pending.acr_values)
    if a8 or (pending.max_age is not None and age_of_sign_in(session, now) > pending.max_age):
        ws = browser_sessions.start_over(
            auth, conn, tenant, now, previous=ws, continuation=ws.continuation
        )
        return redirect(f"/t/{tenant.name}/login", (cookie, ws.cookie))
    return None


def code_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
        if ws is None:
            ws = browser_sessions.save(auth, conn, tenant, now)
    prefill = request.query_params.get("user_code", "")[:16]
    return render(
        "device_code.html",
        {"tenant": tenant, "csrf": browser_sessions.csrf_token(auth, ws), "user_code": prefill},
        cookie=(browser_sessions.cookie_name(tenant), ws.cookie),
    )


def _code_keys(
    auth: Authority, request: Request, tenant: Tenant, ws: WebSession, now: float
) -> tuple[list[str], bool]:
    """The T10 counters of this browser: its people's, or else its address's; and whether
    it has people of its own (then, as at /login, it is not held to its address)."""
    if ws.user_id:
        people = [ws.user_id]
    else:
        cookie = request.cookies.get(known_clients.cookie_name(tenant.name))
        people = known_clients.known_users(auth.keyring, tenant.id, cookie, now)
    if people:
        return [f"user_code:{tenant.id}:user:{user_id}" for user_id in people], True
    return [f"user_code:{tenant.id}:source:{client_address(request)}"], False


def code_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    typed = str(form.get("user_code", ""))[:32]
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.check_csrf(
            auth, browser_sessions.load(auth, conn, tenant, request, now), form
        )
        window = tenant.policy.device_code_lifetime
        keys, exempt = _code_keys(auth, request, tenant, ws, now)
        source = [] if exempt else [throttle.source_key(tenant.id, client_address(request))]
        context = {
            "tenant": tenant,
            "csrf": browser_sessions.csrf_token(auth, ws),
            "user_code": typed,
        }
        blocked = throttle.check(conn, source, now, actor_id=ws.user_id)
        if blocked is not None:
            wait = throttle.human_wait(blocked.retry_after)
            page = render(
                "device_code.html",
                {
                    **context,
                    "error": signin.THROTTLED,
                    "hint": f"Try again in {wait}.",
                },
                status=429,
            )
            page.headers["Retry-After"] = str(blocked.retry_after)
            return page
        full = [k for k in keys if limits.count(conn, k, window=window, now=now) >= MAX_WRONG_CODES]
        if full:
            wait_seconds = max(limits.retry_after(conn, k, window=window, now=now) for k in full)
            events.record(
                conn,
                tenant_id=tenant.id,
                type="rate_limit.user_code",
                outcome="denied",
                now=now,
                actor_id=ws.user_id,
                retry_after=wait_seconds,
            )
            page = render(
                "device_code.html",
                {
                    **context,
                    "error": "Too many wrong codes.",
                    "hint": f"Try again in {throttle.human_wait(wait_seconds)}, or start again "
                    "on your device.",
                },
                status=429,
            )
            page.headers["Retry-After"] = str(wait_seconds)
            return page
        normalized = device_code.normalize_user_code(typed)
        pending = device_code.find_pending(conn, tenant, normalized, now) if normalized else None
        if pending is None:
            for key in keys:
                limits.hit(conn, tenant.id, key, window=window, now=now)
            for counted in source:
                throttle.fail(conn, auth.settings, counted, now)
            return render(
                "device_code.html",
                {
                    **context,
                    "error": "That code is not valid or has expired.",
                    "hint": "Check the code your device shows and type it again.",
                },
                status=400,
            )
        ws = browser_sessions.set_continuation(
            auth, conn, ws, {"kind": "device", "code": pending.device_code_hash}
        )
        if ws.stage == "authenticated":
            session = find_session(conn, tenant.id, ws.session_id) if ws.session_id else None
            if session is not None and not end_reason(session, tenant.policy, now):
                stepping = _step_up(auth, conn, tenant, ws, session, pending, now)
                if stepping is not None:
                    return stepping
            return redirect(f"/t/{tenant.name}/device/confirm")
        if ws.stage != "anonymous":
            ws = browser_sessions.start_over(
                auth, conn, tenant, now, previous=ws, continuation=ws.continuation
            )
            return redirect(
                f"/t/{tenant.name}/login", (browser_sessions.cookie_name(tenant), ws.cookie)
            )
        return redirect(f"/t/{tenant.name}/login")


def confirm_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
        if ws is None or ws.stage != "authenticated" or not ws.session_id:
            return redirect(f"/t/{tenant.name}/device")
        session = find_session(conn, tenant.id, ws.session_id)
        if session is None or end_reason(session, tenant.policy, now):
            return redirect(f"/t/{tenant.name}/login")
        code_hash = (ws.continuation or {}).get("code", "")
        pending = device_code.get_pending(conn, tenant, code_hash, now)
        if (ws.continuation or {}).get("kind") != "device" or pending is None:
            return render(
                "message.html",
                {
                    "tenant": tenant,
                    "title": "No sign-in to approve",
                    "message": "There is no device sign-in waiting, or it has expired. "
                    "Start again on your device.",
                },
                status=400,
            )
        stepping = _step_up(auth, conn, tenant, ws, session, pending, now)
        if stepping is not None:
            return stepping
        client = find_client(conn, tenant.id, pending.client_id)
    return render(
        "device_confirm.html",
        {
            "tenant": tenant,
            "csrf": browser_sessions.csrf_token(auth, ws),
            "client_name": client.name if client else pending.client_id,
            "user_code": device_code.display_user_code(pending.user_code),
        },
    )


def confirm_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.check_csrf(
            auth, browser_sessions.load(auth, conn, tenant, request, now), form
        )
        if ws.stage != "authenticated" or not ws.session_id:
            return redirect(f"/t/{tenant.name}/device")
        session = find_session(conn, tenant.id, ws.session_id)
        if session is None or end_reason(session, tenant.policy, now):
            return redirect(f"/t/{tenant.name}/login")
        code_hash = (ws.continuation or {}).get("code", "")
        approve = form.get("action") == "approve"
        pending = device_code.get_pending(conn, tenant, code_hash, now)
        if approve and pending is not None:
            # a sign-in that does not meet the device's step-up never approves it
            stepping = _step_up(auth, conn, tenant, ws, session, pending, now)
            if stepping is not None:
                return stepping
        decided = device_code.decide(
            conn, code_hash, approve=approve, session_id=ws.session_id if approve else None
        )
        browser_sessions.set_continuation(auth, conn, ws, None)
        if decided:
            events.record(
                conn,
                tenant_id=tenant.id,
                type="device.approved" if approve else "device.denied",
                outcome="success",
                now=now,
                actor_id=session.user_id,
                session_id=session.id,
            )
    if not decided:
        message = "This sign-in has expired or was already decided. Start again on your device."
    elif approve:
        message = "You are signed in on your device. You can close this window."
    else:
        message = "You declined the sign-in. Your device will not be signed in."
    return render("message.html", {"tenant": tenant, "title": "Done", "message": message})


routes = [
    Route("/t/{tenant}/device", in_thread(code_page), methods=["GET"]),
    Route("/t/{tenant}/device", in_thread(code_submit), methods=["POST"]),
    Route("/t/{tenant}/device/confirm", in_thread(confirm_page), methods=["GET"]),
    Route("/t/{tenant}/device/confirm", in_thread(confirm_submit), methods=["POST"]),
]
