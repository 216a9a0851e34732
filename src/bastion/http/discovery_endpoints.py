"""OpenID Connect Discovery 1.0 and the JWKS, per tenant."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.authority.client_assertions import ACCEPTED_ALGORITHMS
from bastion.authority.grants.table import GRANTS
from bastion.authority.resources import OIDC_SCOPES, service_audiences
from bastion.authority.sign_in_sessions import ACR_ONE_FACTOR, ACR_TWO_FACTORS
from bastion.http.endpoint_support import authority_of, base_url, in_thread, issuer_of, load_tenant

CACHE = {"Cache-Control": "public, max-age=300"}


def published_audiences(request: Request) -> dict[str, str]:
    """Each service's audience, as ``bastion_services`` lists it and the token endpoint
    accepts it: on this server, or at the URL configured for a service that runs elsewhere.
    The services are those the application was built with (``create_app``)."""
    services: dict[str, object] = request.app.state.services
    return service_audiences(
        base_url(request), services, authority_of(request).settings.service_urls
    )


def metadata(issuer: str, services: dict[str, str]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "device_authorization_endpoint": f"{issuer}/oauth2/devicecode",
        # draft-ietf-oauth-first-party-apps §8; first-party clients only (decision 0014)
        "authorization_challenge_endpoint": f"{issuer}/oauth2/authorize-challenge",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "jwks_uri": f"{issuer}/discovery/keys",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANTS),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            # applications (RFC 7523 section 2.2, OpenID Connect Core section 9)
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": list(ACCEPTED_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "scopes_supported": list(OIDC_SCOPES),
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "sid",
            "tid",
            "preferred_username",
            "name",
            "email",
        ],
        "acr_values_supported": [ACR_ONE_FACTOR, ACR_TWO_FACTORS],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "bastion_services": services,
    }


def configuration(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
    return JSONResponse(
        metadata(issuer_of(request, tenant), published_audiences(request)), headers=CACHE
    )


def jwks(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        body = auth.keys.jwks(conn, tenant.id)
    return JSONResponse(body, headers=CACHE, media_type="application/jwk-set+json")


routes = [
    Route("/t/{tenant}/.well-known/openid-configuration", in_thread(configuration)),
    # Scripts written for Entra read the document under /v2.0 (MSAL.md).
    Route("/t/{tenant}/v2.0/.well-known/openid-configuration", in_thread(configuration)),
    Route("/t/{tenant}/discovery/keys", in_thread(jwks)),
]
