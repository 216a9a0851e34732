"""Which service a token is for: RFC 8707 resource indicators and ``/.default`` scopes.

Every service of a tenant is an audience, ``{base}/api/{service}``, where ``{base}`` is the
authority's own base URL, or the URL configured for a service that runs in another process
(``BASTION_SERVICE_URLS``, docs/decisions/0010). A client names one with
``resource`` (RFC 8707) or, as MSAL does for Entra, with the scope ``{audience}/.default``.
One sign-in covers every service of the tenant, so a refresh may switch the audience to any
other service; each access token still carries exactly one audience (S2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bastion.core.errors import InvalidScope, InvalidTarget

#: OpenID Connect scopes the authority grants. ``profile`` must be known: MSAL always asks.
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")

DEFAULT_SUFFIX = "/.default"


def service_audiences(
    base_url: str, services: Iterable[str], elsewhere: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each service's audience: ``{base_url}/api/{name}``, or ``{url}/api/{name}`` for a
    service that ``elsewhere`` maps to the base URL of its own process. ``services`` are the
    names of the server's services (``bastion.services.SERVICES``)."""
    elsewhere = elsewhere or {}
    return {name: f"{elsewhere.get(name, base_url)}/api/{name}" for name in services}


@dataclass(frozen=True)
class ScopeRequest:
    """A validated request: the OIDC scopes, and the one audience (if any) it asks for."""

    oidc_scopes: tuple[str, ...]
    audience: str | None

    def response_scope(self) -> str:
        """The ``scope`` of a token response: what MSAL caches the access token under."""
        parts = list(self.oidc_scopes)
        if self.audience:
            parts.append(self.audience + DEFAULT_SUFFIX)
        return " ".join(parts)


def parse_scope_request(
    scope: str | None, resources: list[str], audiences: Mapping[str, str]
) -> ScopeRequest:
    """Validate ``scope`` and ``resource`` together (RFC 8707 section 2, RFC 9700 §2.3)."""
    known = set(audiences.values())
    oidc: list[str] = []
    from_scopes: set[str] = set()
    for item in (scope or "").split():
        if item.endswith(DEFAULT_SUFFIX):
            target = item[: -len(DEFAULT_SUFFIX)]
            if target not in known:
                raise InvalidScope(
                    f"scope '{item}' names no service of this tenant.",
                    hint="Use {service-url}/.default with a URL from bastion_services.",
                )
            from_scopes.add(target)
        elif item in OIDC_SCOPES:
            if item not in oidc:
                oidc.append(item)
        else:
            raise InvalidScope(
                f"scope '{item}' is not known.",
                hint=f"Known scopes: {', '.join(OIDC_SCOPES)} and {{service-url}}/.default.",
            )
    if len(from_scopes) > 1:
        raise InvalidScope(
            "the scopes name more than one service.",
            hint="Ask for one service per token; refresh for the others.",
        )
    from_resources: set[str] = set()
    for resource in resources:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or parts.fragment:
            raise InvalidTarget(f"resource '{resource}' is not an absolute URI.")
        if resource not in known:
            raise InvalidTarget(
                f"resource '{resource}' is not a service of this tenant.",
                hint="Use a URL from bastion_services in the discovery document.",
            )
        from_resources.add(resource)
    if len(from_resources) > 1:
        raise InvalidTarget("more than one resource was requested; ask for one per token.")
    if from_resources and from_scopes and from_resources != from_scopes:
        raise InvalidTarget("the resource and the /.default scope name different services.")
    audience = next(iter(from_resources or from_scopes), None)
    return ScopeRequest(oidc_scopes=tuple(oidc), audience=audience)
