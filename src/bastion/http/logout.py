"""Signing out (OpenID Connect RP-initiated logout, without redirects).

Signing out ends the sign-in session server-side and revokes every refresh token it issued
(S5). The page asks for confirmation, and the POST carries the CSRF token. It never
redirects to a URL taken from a parameter (T1).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority.sign_in_sessions import revoke_session
from bastion.http import browser_sessions
from bastion.http.endpoint_support import authority_of, in_thread, load_tenant, render


def logout_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.load(auth, conn, tenant, request, now)
    if ws is None or ws.stage != "authenticated":
        return render(
            "message.html",
            {"tenant": tenant, "title": "Signed out", "message": "You are not signed in."},
        )
    return render("logout.html", {"tenant": tenant, "csrf": browser_sessions.csrf_token(auth, ws)})


def logout_submit(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        ws = browser_sessions.check_csrf(
            auth, browser_sessions.load(auth, conn, tenant, request, now), form
        )
        if ws.session_id:
            revoke_session(conn, ws.session_id, now)
            events.record(
                conn,
                tenant_id=tenant.id,
                type="sign_out",
                outcome="success",
                now=now,
                actor_id=ws.user_id,
                session_id=ws.session_id,
            )
        browser_sessions.end(auth, conn, ws)
    response = render(
        "message.html",
        {
            "tenant": tenant,
            "title": "Signed out",
            "message": "You are signed out, and every sign-in from this session ended.",
        },
    )
    response.delete_cookie(
        browser_sessions.cookie_name(tenant), path="/", secure=True, httponly=True, samesite="lax"
    )
    return response


routes = [
    Route("/t/{tenant}/oauth2/logout", in_thread(logout_page), methods=["GET"]),
    Route("/t/{tenant}/oauth2/logout", in_thread(logout_submit), methods=["POST"]),
]
