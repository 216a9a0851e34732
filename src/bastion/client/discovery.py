"""The tenant's OpenID Connect discovery document, checked before any use (T9).

The issuer is ``{url}/t/{tenant}``; a document naming any other issuer is refused
(OpenID Connect Discovery section 4.3), whatever else it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.client.documents import DocumentCache
from bastion.client.errors import IssuerMismatch, ServerError
from bastion.client.http import Http

REQUIRED = ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint")


def issuer_of(url: str, tenant: str) -> str:
    return f"{url.rstrip('/')}/t/{tenant}"


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    device_authorization_endpoint: str
    revocation_endpoint: str | None
    #: the first-party apps draft's endpoint, where the authority offers it
    authorization_challenge_endpoint: str | None
    #: each service of the tenant and its audience, which is also its base URL
    services: dict[str, str]
    version: str


def _checker(issuer: str) -> Any:
    def check(body: dict[str, Any]) -> None:
        if body.get("issuer") != issuer:
            raise IssuerMismatch(
                "the discovery document", expected=issuer, received=body.get("issuer")
            )
        missing = [name for name in REQUIRED if not isinstance(body.get(name), str)]
        if missing:
            raise ServerError(f"the discovery document of {issuer} lacks {', '.join(missing)}.")

    return check


def load(http: Http, documents: DocumentCache, issuer: str, *, refresh: bool = False) -> Discovery:
    check = _checker(issuer)
    doc = documents.get(
        http,
        f"{issuer}/.well-known/openid-configuration",
        what=f"the discovery document of {issuer}",
        check=check,
        refresh=refresh,
    )
    body = doc.body
    check(body)  # a document read from disk is checked again
    services = body.get("bastion_services") or {}
    return Discovery(
        issuer=issuer,
        authorization_endpoint=body["authorization_endpoint"],
        token_endpoint=body["token_endpoint"],
        device_authorization_endpoint=body["device_authorization_endpoint"],
        revocation_endpoint=body.get("revocation_endpoint"),
        authorization_challenge_endpoint=body.get("authorization_challenge_endpoint"),
        services={str(k): str(v) for k, v in services.items()}
        if isinstance(services, dict)
        else {},
        version=doc.version,
    )
