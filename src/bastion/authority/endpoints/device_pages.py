"""The device verification pages (RFC 8628 section 3.3).

The person enters (or is handed) the user code, signs in, sees which application asks and
the code to compare with their device's screen, and approves or declines (T11). Wrong codes
are limited to :data:`MAX_WRONG_CODES` per code lifetime, per source address and per
signed-in person (T10).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority import limits
from bastion.authority.clients import find_client
from bastion.authority.endpoints.flow import redirect
from bastion.authority.grants import device_code
from bastion.authority.sessions import end_reason, find_session
from bastion.web import web_session
from bastion.web.common import authority_of, client_address, in_thread, load_tenant, render

MAX_WRONG_CODES = 5


def code_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = web_session.load(auth, conn, tenant, request, now)
        if ws is None:
            ws = web_session.save(auth, conn, tenant, now)
    prefill = request.query_params.get("user_code", "")[:16]
    return render(
        "device_code.html",
        {"tenant": tenant, "csrf": web_session.csrf_token(auth, ws), "user_code": prefill},
        cookie=(web_session.cookie_name(tenant), ws.cookie),
    )


def code_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    typed = str(form.get("user_code", ""))[:32]
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = web_session.check_csrf(auth, web_session.load(auth, conn, tenant, request, now), form)
        window = tenant.policy.device_code_lifetime
        keys = [f"user_code:{tenant.id}:source:{client_address(request)}"]
        if ws.user_id:
            keys.append(f"user_code:{tenant.id}:user:{ws.user_id}")
        context = {"tenant": tenant, "csrf": web_session.csrf_token(auth, ws), "user_code": typed}
        if any(limits.count(conn, k, window=window, now=now) >= MAX_WRONG_CODES for k in keys):
            events.record(
                conn,
                tenant_id=tenant.id,
                type="rate_limit.user_code",
                outcome="denied",
                now=now,
                actor_id=ws.user_id,
            )
            return render(
                "device_code.html",
                {
                    **context,
                    "error": "Too many wrong codes.",
                    "hint": "Wait a few minutes, then start again on your device.",
                },
                status=429,
            )
        normalized = device_code.normalize_user_code(typed)
        pending = device_code.find_pending(conn, tenant, normalized, now) if normalized else None
        if pending is None:
            for key in keys:
                limits.hit(conn, tenant.id, key, window=window, now=now)
            return render(
                "device_code.html",
                {
                    **context,
                    "error": "That code is not valid or has expired.",
                    "hint": "Check the code your device shows and type it again.",
                },
                status=400,
            )
        ws = web_session.set_continuation(
            auth, conn, ws, {"kind": "device", "code": pending.device_code_hash}
        )
        if ws.stage == "authenticated":
            return redirect(f"/t/{tenant.name}/device/confirm")
        if ws.stage != "anonymous":
            ws = web_session.start_over(
                auth, conn, tenant, now, previous=ws, continuation=ws.continuation
            )
            return redirect(f"/t/{tenant.name}/login", (web_session.cookie_name(tenant), ws.cookie))
        return redirect(f"/t/{tenant.name}/login")


def confirm_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = web_session.load(auth, conn, tenant, request, now)
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
        client = find_client(conn, tenant.id, pending.client_id)
    return render(
        "device_confirm.html",
        {
            "tenant": tenant,
            "csrf": web_session.csrf_token(auth, ws),
            "client_name": client.name if client else pending.client_id,
            "user_code": device_code.display_user_code(pending.user_code),
        },
    )


def confirm_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = web_session.check_csrf(auth, web_session.load(auth, conn, tenant, request, now), form)
        if ws.stage != "authenticated" or not ws.session_id:
            return redirect(f"/t/{tenant.name}/device")
        session = find_session(conn, tenant.id, ws.session_id)
        if session is None or end_reason(session, tenant.policy, now):
            return redirect(f"/t/{tenant.name}/login")
        code_hash = (ws.continuation or {}).get("code", "")
        approve = form.get("action") == "approve"
        decided = device_code.decide(
            conn, code_hash, approve=approve, session_id=ws.session_id if approve else None
        )
        web_session.set_continuation(auth, conn, ws, None)
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
