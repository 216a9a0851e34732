"""The authorization endpoint, RFC 6749 section 3.1, as a table of checks.

Until the client and its redirect URI are known good, errors are shown on a page and never
redirected (RFC 9700 section 4.11.2). After that, errors go back to the client with
``error``, ``state`` and ``iss`` (RFC 9207). Only ``response_type=code`` exists: no implicit
flow, no hybrid flow.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.authority import factor_store, signin
from bastion.authority.clients import GRANT_AUTHORIZATION_CODE, Client, find_client
from bastion.authority.grants import pkce_verification as pkce
from bastion.authority.parts import Authority
from bastion.authority.resources import parse_scope_request
from bastion.authority.sign_in_sessions import end_reason, find_session, needs_step_up
from bastion.core.errors import (
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from bastion.core.secrets_at_rest import random_token
from bastion.core.text import has_control
from bastion.directory.tenants import Tenant
from bastion.http import browser_sessions
from bastion.http.discovery_endpoints import published_audiences
from bastion.http.endpoint_support import authority_of, in_thread, issuer_of, load_tenant, render
from bastion.http.sign_in_flow import client_redirect, finish, redirect
from bastion.store.schema import auth_requests

REQUEST_LIFETIME = 1800


def _error_page(tenant: Tenant, message: str) -> Response:
    return render(
        "message.html",
        {"title": "This sign-in request is not valid", "tenant": tenant, "message": message},
        status=400,
    )


def _check_request(request: Request, client: Client, q: dict[str, str]) -> dict[str, Any]:
    """The checks after the redirect URI is trusted, in the order they run."""
    if q.get("response_type") != "code":
        raise UnsupportedResponseType("only response_type=code is supported.")
    if not client.allows_grant(GRANT_AUTHORIZATION_CODE):
        raise UnauthorizedClient("this client may not use the authorization code grant.")
    challenge = pkce.check_challenge(q.get("code_challenge"), q.get("code_challenge_method"))
    resources = request.query_params.getlist("resource")
    scope = parse_scope_request(q.get("scope"), resources, published_audiences(request))
    if any(has_control(q.get(name) or "") for name in ("state", "nonce", "acr_values")):
        raise InvalidRequest("state, nonce and acr_values may not contain control characters.")
    max_age = q.get("max_age")
    if max_age is not None and not max_age.isdigit():
        raise InvalidRequest("max_age must be a number of seconds.")
    return {
        "client_id": client.client_id,
        "redirect_uri": q["redirect_uri"],
        "state": q.get("state"),
        "code_challenge": challenge,
        "scopes": list(scope.oidc_scopes),
        "resource": scope.audience,
        "nonce": q.get("nonce"),
        "max_age": int(max_age) if max_age is not None else None,
        "acr_values": (q.get("acr_values") or "").split(),
        "prompt": (q.get("prompt") or "").split(),
    }


def authorize(request: Request, form: dict[str, Any]) -> Response:
    auth: Authority = authority_of(request)
    now = auth.now()
    q = {k: v for k, v in request.query_params.items()}
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        client = find_client(conn, tenant.id, q.get("client_id", ""))
        if client is None:
            return _error_page(tenant, "The application is not registered in this tenant.")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri or not client.redirect_uri_matches(redirect_uri):
            return _error_page(
                tenant, "The redirect address is not registered for this application."
            )
        issuer = issuer_of(request, tenant)
        try:
            params = _check_request(request, client, q)
        except OAuthError as exc:
            answer = {
                "error": exc.oauth_error or "invalid_request",
                "error_description": exc.detail,
                "iss": issuer,
            }
            if q.get("state") is not None:
                answer["state"] = q["state"]
            return client_redirect(redirect_uri, answer)
        return _route(auth, conn, request, tenant, params, now)


def _route(
    auth: Authority,
    conn: Connection,
    request: Request,
    tenant: Tenant,
    params: dict[str, Any],
    now: float,
) -> Response:
    request_id = random_token(24)
    conn.execute(
        insert(auth_requests).values(
            id=request_id, tenant_id=tenant.id, params=params, expires_at=now + REQUEST_LIFETIME
        )
    )
    continuation = {"kind": "authorize", "request": request_id}
    cookie_name = browser_sessions.cookie_name(tenant)
    ws = browser_sessions.load(auth, conn, tenant, request, now)
    session = (
        find_session(conn, tenant.id, ws.session_id)
        if ws is not None and ws.stage == "authenticated" and ws.session_id
        else None
    )
    alive = session is not None and not end_reason(session, tenant.policy, now)
    if ws is not None and session is not None and alive and "login" not in params["prompt"]:
        ws = browser_sessions.set_continuation(auth, conn, ws, continuation)
        # A8: a role holder's password-only sign-in is stepped up, whatever was asked
        wanted = signin.required_acr_values(conn, session.user_id, params["acr_values"])
        if not needs_step_up(session, max_age=params.get("max_age"), acr_values=wanted, now=now):
            return finish(auth, conn, request, tenant, ws, now, None)
        # RFC 9470: a sign-in that is too old or too weak proves the second factor again,
        # not the password.
        if factor_store.has_factor(conn, session.user_id):
            ws = browser_sessions.save(auth, conn, tenant, now, previous=ws, stage="stepup")
            return redirect(f"/t/{tenant.name}/login/mfa", (cookie_name, ws.cookie))
    if "none" in params["prompt"]:
        answer = {"error": "login_required", "iss": issuer_of(request, tenant)}
        if params.get("state") is not None:
            answer["state"] = params["state"]
        return client_redirect(params["redirect_uri"], answer)
    ws = browser_sessions.start_over(
        auth, conn, tenant, now, previous=ws, continuation=continuation
    )
    return redirect(f"/t/{tenant.name}/login", (cookie_name, ws.cookie))


routes = [
    Route("/t/{tenant}/oauth2/authorize", in_thread(authorize), methods=["GET"]),
]
