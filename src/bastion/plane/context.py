"""Who is calling, and what a command body may use."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from bastion.authority.passwords import PasswordHasher
from bastion.directory.tenants import Tenant


@dataclass(frozen=True)
class Caller:
    """The principal of a validated access token, identified by (issuer, sub) — never by
    name (R4). ``roles`` are read from the directory at each command, not from the token, so
    removing someone from a role takes effect on their next command."""

    tenant: Tenant
    issuer: str
    subject: str
    name: str
    client_id: str
    session_id: str
    amr: tuple[str, ...]
    acr: str
    auth_time: float
    roles: tuple[str, ...]


@dataclass(frozen=True)
class CommandContext:
    conn: Connection
    caller: Caller
    now: float
    request_id: str | None
    #: the server's configured Argon2id hasher, for commands that set passwords
    hasher: PasswordHasher

    @property
    def tenant(self) -> Tenant:
        return self.caller.tenant
