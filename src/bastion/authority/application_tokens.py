"""Access tokens of applications: issuing them, and what makes one stop counting.

An application's access token (the client credentials grant, RFC 6749 section 4.4) is a JWT
like a user's (RFC 9068), signed with the tenant's key, but it says whose it is differently:
``sub`` is the application's id, ``client_id`` and ``azp`` its appId, ``idtyp`` is ``app``;
it carries no session (``sid``), no ``amr``, ``acr`` or ``auth_time``.

The signature and the claims every service checks say nothing of what happened since it was
issued. :func:`check_application_token` does, for the command plane: the application must
still exist and be enabled, the token must be issued after the application's
``valid_after`` (set when a certificate or federated credential is removed), and the
request must come from within its allowed networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import Connection

from bastion.authority.tokens import sign
from bastion.core.errors import InvalidToken
from bastion.core.secrets_at_rest import random_token
from bastion.directory.applications import Application, by_id
from bastion.directory.tenants import Tenant

#: the ``idtyp`` claim of an application's token (as Microsoft Entra names it)
APP_TOKEN_TYPE = "app"


def application_access_token(
    key: ECKey,
    *,
    tenant: Tenant,
    issuer: str,
    app: Application,
    roles: list[str],
    audience: str,
    scope: str,
    now: float,
) -> tuple[str, int]:
    """The signed token and its lifetime in seconds (the tenant's access token lifetime)."""
    lifetime = tenant.policy.access_token_lifetime
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": app.id,
        "aud": audience,
        "tid": tenant.id,
        "client_id": app.app_id,
        "azp": app.app_id,
        "idtyp": APP_TOKEN_TYPE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": random_token(16),
        "scope": scope,
        "roles": roles,
        "app_displayname": app.display_name,
    }
    return sign(key, "at+jwt", claims), lifetime


def is_application_token(claims: Mapping[str, Any]) -> bool:
    return claims.get("idtyp") == APP_TOKEN_TYPE


def check_application_token(
    conn: Connection, tenant: Tenant, claims: Mapping[str, Any], source: str | None
) -> Application:
    """The application a valid (signature, issuer, audience, lifetime checked) access token
    belongs to, if it still counts; otherwise :class:`InvalidToken` saying why.

    Like a user's token without a session, it is compared by its whole-second ``iat``:
    refused up to the second after ``valid_after``."""
    if not is_application_token(claims):
        raise InvalidToken("The token is not an application's.")
    sub = claims.get("sub")
    app = by_id(conn, tenant.id, sub) if isinstance(sub, str) else None
    if app is None:
        raise InvalidToken("The application this token was issued to no longer exists.")
    if claims.get("client_id") != app.app_id:
        raise InvalidToken("The token's client_id is not its application's appId.")
    if not app.enabled:
        raise InvalidToken(f"The application '{app.display_name}' is disabled.")
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise InvalidToken("The token has no iat.")
    if app.valid_after is not None and issued < app.valid_after:
        raise InvalidToken(
            "The application's tokens issued before a certificate or federated credential "
            "was removed no longer count.",
            hint="Get a new token.",
        )
    if not app.allows_source(source):
        raise InvalidToken(
            f"Requests from {source} are not within the application's allowed networks."
        )
    return app
