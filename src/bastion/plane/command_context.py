"""Who is calling, and what a command body may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection

from bastion.authority.passwords import PasswordHasher
from bastion.directory.role_groups import Grant
from bastion.directory.tenants import Tenant
from bastion.plane.roles import Roles
from bastion.plane.scope import Scope


@dataclass(frozen=True)
class Caller:
    """The principal of a validated access token, identified by (issuer, sub) — never by
    name (R4). ``grants`` are read from the directory at each command, not from the token,
    so removing someone from a role group takes effect on their next command (R3).

    An application (``kind`` ``app``) is its id as ``subject``, its display name as ``name``
    and its appId as ``client_id``; it has no session, no ``amr`` and no ``acr``."""

    tenant: Tenant
    issuer: str
    subject: str
    name: str
    client_id: str
    session_id: str
    amr: tuple[str, ...]
    acr: str
    auth_time: float
    grants: tuple[Grant, ...]
    kind: Literal["user", "app"] = "user"

    @property
    def is_application(self) -> bool:
        return self.kind == "app"

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted({grant.role for grant in self.grants}))


@dataclass(frozen=True)
class CommandContext:
    conn: Connection
    caller: Caller
    now: float
    request_id: str | None
    #: the server's configured Argon2id hasher, for commands that set passwords
    hasher: PasswordHasher
    #: the objects this command may touch (``bastion.plane.scope``)
    scope: Scope
    #: the server's roles (derived from its services), for commands about roles
    roles: Roles
    #: what the command's ``prepare`` computed before the transaction (e.g. a password hash)
    prepared: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant(self) -> Tenant:
        return self.caller.tenant
