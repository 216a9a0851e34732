"""The client credentials grant, for applications (RFC 6749 section 4.4).

The application authenticated already, with a client assertion (RFC 7523 section 2.2,
:mod:`bastion.authority.client_assertions`). The grant names one service, with the scope
``{audience}/.default`` or ``resource`` (RFC 8707), as for users; OpenID Connect scopes are
a person's and are refused. The answer is an access token only: no refresh token (section
4.4.3) and no ID token. Every token issued is a sign-in record of the application (S11).
"""

from __future__ import annotations

from typing import Any, ClassVar

from bastion.authority.application_tokens import application_access_token
from bastion.authority.client_assertions import record_sign_in
from bastion.authority.clients import GRANT_CLIENT_CREDENTIALS
from bastion.authority.grants.grant import Grant, TokenRequest
from bastion.authority.resources import parse_scope_request
from bastion.core.errors import InvalidScope, UnauthorizedClient
from bastion.directory.role_groups import role_names_of


class ClientCredentialsGrant(Grant):
    grant_type: ClassVar[str] = GRANT_CLIENT_CREDENTIALS
    parameters = frozenset({"scope", "resource"})
    refusal = (
        "Only applications may use the client credentials grant, authenticated with a "
        "client assertion (private_key_jwt)."
    )
    for_registered_clients = False

    def respond(self, request: TokenRequest) -> dict[str, Any]:
        if request.application is None:
            raise UnauthorizedClient(self.refusal)
        return super().respond(request)

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        authenticated = request.application
        if authenticated is None:
            raise UnauthorizedClient(self.refusal)
        scopes = parse_scope_request(
            request.text("scope") or None, request.resources, request.audiences
        )
        if scopes.oidc_scopes:
            raise InvalidScope(
                f"scope {' '.join(scopes.oidc_scopes)} is a person's; an application asks for "
                "a service only.",
                hint="Ask for {service-url}/.default alone.",
            )
        if scopes.audience is None:
            raise InvalidScope(
                "name the service the token is for.",
                hint="Send scope={service-url}/.default (or resource={service-url}), with a "
                "URL from bastion_services in the discovery document.",
            )
        app = authenticated.application
        conn, now = request.conn, request.now
        key = request.auth.keys.active_key(conn, request.tenant.id)
        scope = scopes.response_scope()
        token, lifetime = application_access_token(
            key,
            tenant=request.tenant,
            issuer=request.issuer,
            app=app,
            roles=role_names_of(conn, app.id),
            audience=scopes.audience,
            scope=scope,
            now=now,
        )
        record_sign_in(conn, authenticated, audience=scopes.audience, now=now)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }
