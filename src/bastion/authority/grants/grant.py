"""What the token endpoint hands a grant, and what a grant is.

RFC 6749 section 3.2: every token request names its ``grant_type``; the client is
authenticated first (section 3.2.1), then the grant's own parameters are checked and tokens
issued (sections 4.1.3, 6; RFC 8628 section 3.4). The endpoint does the shared part once and
builds one frozen :class:`TokenRequest`; a :class:`Grant` declares its type, the parameters
it reads and the ``unauthorized_client`` answer for a client not registered for it, and
:meth:`Grant.handle` does the rest. The table in :mod:`bastion.authority.grants.table` maps
each type to its grant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from sqlalchemy import Connection

from bastion.authority.client_assertions import AuthenticatedApplication
from bastion.authority.clients import Client
from bastion.authority.parts import Authority
from bastion.core.errors import UnauthorizedClient
from bastion.directory.tenants import Tenant


@dataclass(frozen=True)
class TokenRequest:
    """One token request after client authentication: the same for every grant."""

    auth: Authority
    conn: Connection
    tenant: Tenant
    issuer: str
    #: each service's audience (RFC 8707 ``resource`` values the tenant accepts)
    audiences: Mapping[str, str]
    client: Client
    #: the form, limited to the parameters the grant declares (read-only)
    form: Mapping[str, Any]
    now: float
    #: the application that authenticated with a client assertion (then ``client`` is it,
    #: as a client of the one grant applications use), or None
    application: AuthenticatedApplication | None = None

    def text(self, name: str) -> str:
        """A parameter as a string, empty when absent."""
        return str(self.form.get(name) or "")

    @property
    def resources(self) -> list[str]:
        """Every ``resource`` parameter sent (RFC 8707 section 2), in order."""
        return list(self.form.get("resource_list") or [])


class Grant(ABC):
    """One grant type of the token endpoint."""

    #: the ``grant_type`` value (RFC 6749 section 4, or a URN for an extension grant)
    grant_type: ClassVar[str]
    #: the form parameters the grant reads, besides ``grant_type`` and the client's
    #: credentials; the handler sees no others
    parameters: ClassVar[frozenset[str]]
    #: the ``unauthorized_client`` message for a client not registered for this grant
    refusal: ClassVar[str]
    #: may a registered client (a row of ``clients``) be registered for it; applications'
    #: grant is theirs alone
    for_registered_clients: ClassVar[bool] = True

    def require_client(self, client: Client) -> None:
        """RFC 6749 section 5.2 ``unauthorized_client``: the client may not use this grant."""
        if not client.allows_grant(self.grant_type):
            raise UnauthorizedClient(self.refusal)

    def respond(self, request: TokenRequest) -> dict[str, Any]:
        """The token response (RFC 6749 section 5.1) or one of the errors of section 5.2."""
        self.require_client(request.client)
        return self.handle(request)

    def declared(self, form: Mapping[str, Any]) -> Mapping[str, Any]:
        """``form`` with only the declared parameters (``resource`` keeps its full list)."""
        kept = {name: form[name] for name in self.parameters if name in form}
        if "resource" in self.parameters:
            kept["resource_list"] = list(form.get("resource_list") or [])
        return MappingProxyType(kept)

    @abstractmethod
    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Check the grant's parameters and issue tokens; the client is allowed already."""
