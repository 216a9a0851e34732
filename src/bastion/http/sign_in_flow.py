"""Where a finished sign-in goes next: back to the authorization request or the device."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, delete, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.authority.grants.authorization_code import issue_code
from bastion.authority.parts import Authority
from bastion.directory.tenants import Tenant
from bastion.http import browser_sessions
from bastion.http.endpoint_support import issuer_of, render, set_session_cookie
from bastion.store.schema import auth_requests


def redirect(location: str, cookie: tuple[str, str] | None = None) -> Response:
    """303, never 307, after a credential POST (RFC 9700 section 4.12)."""
    response = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    if cookie:
        set_session_cookie(response, *cookie)
    return response


def client_redirect(
    redirect_uri: str, params: dict[str, str], cookie: tuple[str, str] | None = None
) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode(params), cookie)


def load_request(
    conn: Connection, tenant: Tenant, request_id: str, now: float
) -> dict[str, Any] | None:
    row = conn.execute(
        select(auth_requests).where(
            auth_requests.c.id == request_id, auth_requests.c.tenant_id == tenant.id
        )
    ).first()
    if row is None or now > row.expires_at:
        return None
    params: dict[str, Any] = row.params
    return params


def form_target(
    conn: Connection, tenant: Tenant, ws: browser_sessions.WebSession | None, now: float
) -> str | None:
    """The redirect URI a sign-in page's form may end at (its origin goes in the page's
    CSP ``form-action``): the one of the authorization request this sign-in continues."""
    continuation = (ws.continuation if ws is not None else None) or {}
    if continuation.get("kind") != "authorize":
        return None
    params = load_request(conn, tenant, str(continuation.get("request", "")), now)
    uri = params.get("redirect_uri") if params else None
    return str(uri) if uri else None


def finish(
    auth: Authority,
    conn: Connection,
    request: Request,
    tenant: Tenant,
    ws: browser_sessions.WebSession,
    now: float,
    cookie: tuple[str, str] | None,
) -> Response:
    """The person is signed in: continue what started the sign-in."""
    continuation = ws.continuation or {}
    kind = continuation.get("kind")
    if kind == "authorize":
        browser_sessions.set_continuation(auth, conn, ws, None)
    if kind == "authorize":
        params = load_request(conn, tenant, continuation.get("request", ""), now)
        conn.execute(delete(auth_requests).where(auth_requests.c.id == continuation.get("request")))
        if params is None:
            return render(
                "message.html",
                {
                    "title": "Sign-in request expired",
                    "tenant": tenant,
                    "message": "The application's sign-in request has expired. "
                    "Start again from the application.",
                },
                status=400,
                cookie=cookie,
            )
        assert ws.session_id is not None
        code = issue_code(
            auth,
            conn,
            tenant=tenant,
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            code_challenge=params["code_challenge"],
            session_id=ws.session_id,
            scopes=tuple(params["scopes"]),
            resource=params.get("resource"),
            nonce=params.get("nonce"),
            now=now,
        )
        answer = {"code": code, "iss": issuer_of(request, tenant)}
        if params.get("state") is not None:
            answer["state"] = params["state"]
        return client_redirect(params["redirect_uri"], answer, cookie)
    if kind == "device":
        return redirect(f"/t/{tenant.name}/device/confirm", cookie)
    if kind == "account":
        browser_sessions.set_continuation(auth, conn, ws, None)
        return redirect(f"/t/{tenant.name}/account", cookie)
    return render(
        "message.html",
        {
            "title": "You are signed in",
            "tenant": tenant,
            "message": "You are signed in. You can close this window.",
        },
        cookie=cookie,
    )
