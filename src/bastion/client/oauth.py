"""The client side of the authority's endpoints: token requests, revocation, challenges.

Every token response is checked before it is used (T9, RFC 9207 and RFC 9700 section 4.4):
the access token's ``iss`` claim, and the ID token's if there is one, must be the issuer the
client connected to, and the access token must be for the audience asked for. The client
reads these claims without verifying the signature: it is not the party that relies on the
token (the services are), it only refuses answers that are not meant for it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.client.errors import (
    ClientError,
    IssuerMismatch,
    ServerError,
    SignInFailed,
    SignInRequired,
    UsageError,
)
from bastion.client.http import json_body

if TYPE_CHECKING:
    from bastion.client.http import Http

CLIENT_ID = "bastion-cli"
SCOPE = "openid profile offline_access"

#: OAuth errors after which only a new sign-in helps
_SIGN_IN_AGAIN = frozenset({"invalid_grant", "access_denied", "expired_token", "login_required"})


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified; ``{}`` for a token that is not a JWT."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


@dataclass(frozen=True)
class TokenSet:
    """A checked token response."""

    access_token: str
    expires_at: float
    lifetime: float
    audience: str | None
    refresh_token: str | None
    claims: dict[str, Any]
    auth_session: str | None = None
    session_expires_at: float | None = None
    #: the terminal sign-in's ``known_client`` (decision 0019): shown with a later password
    #: of the same user, it spares this client the per-address throttle
    known_client: str | None = None


def oauth_failure(status: int, body: dict[str, Any] | None, what: str) -> ClientError:
    """The error for an OAuth error response (RFC 6749 section 5.2)."""
    body = body or {}
    code = str(body.get("error") or "")
    description = str(body.get("error_description") or code or f"HTTP {status}")
    if code in _SIGN_IN_AGAIN:
        return SignInRequired(
            f"{what}: {description}", hint="Sign in again.", status=status, problem=body
        )
    if status >= 500 or not code:
        return ServerError(f"{what} failed: {description}", status=status, problem=body)
    if code in ("invalid_client", "unauthorized_client", "invalid_scope", "invalid_target"):
        return UsageError(f"{what}: {description}", status=status, problem=body)
    return ClientError(f"{what}: {description}", status=status, problem=body)


def token_request(
    http: Http,
    endpoint: str,
    form: dict[str, str],
    *,
    issuer: str,
    resource: str | None,
    idempotent: bool,
    what: str = "the token request",
) -> TokenSet:
    """POST to the token endpoint and check the answer."""
    sent = time.time()
    response = http.request(
        "POST", endpoint, data={"client_id": CLIENT_ID, **form}, idempotent=idempotent
    )
    body = json_body(response)
    if response.status_code != 200 or body is None or "access_token" not in body:
        raise oauth_failure(response.status_code, body, what)
    return check_token_response(body, issuer=issuer, resource=resource, sent=sent)


def check_token_response(
    body: dict[str, Any], *, issuer: str, resource: str | None, sent: float
) -> TokenSet:
    access = str(body["access_token"])
    found = claims(access)
    if found.get("iss") != issuer:
        raise IssuerMismatch("the access token", expected=issuer, received=found.get("iss"))
    id_token = body.get("id_token")
    if id_token:
        id_iss = claims(str(id_token)).get("iss")
        if id_iss != issuer:
            raise IssuerMismatch("the ID token", expected=issuer, received=id_iss)
    audience = found.get("aud")
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    if resource is not None and audience != resource:
        raise ServerError(
            f"the authority issued a token for '{audience}' when '{resource}' was asked for."
        )
    try:
        lifetime = float(body.get("expires_in") or found.get("exp", sent) - sent)
    except (TypeError, ValueError) as exc:
        raise ServerError("the token response has no usable expires_in.") from exc
    session_left = body.get("refresh_token_expires_in")
    return TokenSet(
        access_token=access,
        expires_at=sent + lifetime,
        lifetime=lifetime,
        audience=str(audience) if audience else None,
        refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
        claims=found,
        auth_session=str(body["auth_session"]) if body.get("auth_session") else None,
        session_expires_at=sent + float(session_left) if session_left else None,
    )


def refresh(
    http: Http, endpoint: str, refresh_token: str, *, issuer: str, resource: str
) -> TokenSet:
    """RFC 6749 section 6, with RFC 8707 ``resource``. Retried on a lost answer: the
    authority's grace window answers the same token again for a few seconds."""
    return token_request(
        http,
        endpoint,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "resource": resource},
        issuer=issuer,
        resource=resource,
        idempotent=True,
        what="renewing the sign-in",
    )


def revoke(http: Http, endpoint: str, token: str, hint: str) -> None:
    """RFC 7009. An unknown or expired token is answered 200 too."""
    response = http.request(
        "POST",
        endpoint,
        data={"client_id": CLIENT_ID, "token": token, "token_type_hint": hint},
    )
    if response.status_code != 200:
        raise oauth_failure(response.status_code, json_body(response), "revoking the token")


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate: Bearer`` challenge (RFC 6750 section 3, RFC 9470 section 3)."""

    error: str | None
    description: str | None
    max_age: int | None
    acr_values: str | None


_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str | None) -> Challenge:
    params: dict[str, str] = {}
    if header and header.strip().lower().startswith("bearer"):
        for match in _PARAM.finditer(header[6:]):
            value = match.group(2) if match.group(2) is not None else match.group(3)
            params[match.group(1).lower()] = value.replace('\\"', '"')
    max_age = params.get("max_age")
    return Challenge(
        error=params.get("error"),
        description=params.get("error_description"),
        max_age=int(max_age) if max_age and max_age.isdigit() else None,
        acr_values=params.get("acr_values"),
    )


def sign_in_failed(body: dict[str, Any] | None, status: int, what: str) -> SignInFailed:
    body = body or {}
    description = str(body.get("error_description") or body.get("error") or f"HTTP {status}")
    return SignInFailed(f"{what}: {description}", status=status, problem=body)
