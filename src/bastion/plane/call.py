"""One call of a command as it moves through the pipeline (``bastion.plane.pipeline``).

:class:`Incoming` is what the HTTP edge hands over, with no framework type in it;
:class:`Call` is the state every step reads and enriches, and how the call is recorded in
the audit log (L1)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection

from bastion.audit import events
from bastion.authority.parts import Authority
from bastion.plane import listings as paging
from bastion.plane.command_context import Caller
from bastion.plane.declare import CommandSpec
from bastion.plane.roles import Roles
from bastion.plane.scope import Scope

if TYPE_CHECKING:
    from bastion.plane.answers import Answer, Replay
    from bastion.plane.remote_keys import RemoteKeys

T = TypeVar("T")

#: parameters whose values never reach the audit log
SECRET_PARAMETERS = frozenset({"password", "secret", "code", "token"})


@dataclass(frozen=True)
class Incoming:
    """A ``POST /api/{service}/commands/{name}``, as the steps need it."""

    service: str
    name: str
    body: bytes
    #: the ``Authorization``, ``Content-Type`` and ``Idempotency-Key`` headers
    authorization: str
    content_type: str
    idempotency_key: str | None
    #: this server's public base URL: audiences are ``{base_url}/api/{service}``
    base_url: str
    #: in a process serving services alone, the authority's published keys (decision 0010)
    remote: RemoteKeys | None = None


@dataclass
class Call:
    """What the steps know so far. Each step reads what earlier steps found and adds its own."""

    auth: Authority
    incoming: Incoming
    commands: Mapping[str, Mapping[str, CommandSpec]]
    #: the server's roles (derived from its services)
    roles: Roles
    now: float
    #: ``time.perf_counter()`` when the request arrived, for the recorded duration
    started: float
    #: closes the read snapshot when the call ends
    closing: ExitStack = field(default_factory=ExitStack)
    found: CommandSpec | None = None
    #: a read's snapshot, from the token check to its last row (decision 0012)
    snapshot: Connection | None = None
    signed_in: Caller | None = None
    #: the parameters as sent, once read (``cursor``, ``page_size``, ``count`` taken out)
    raw: dict[str, Any] = field(default_factory=dict)
    #: the parameters a refusal's audit record names: none, then as sent, then as validated
    known: dict[str, Any] = field(default_factory=dict)
    cursor: str | None = None
    page_size: int = 0
    count: bool = False
    allowed: Scope | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    #: the validated parameters as JSON, for the audit record and the cursor's binding
    params: dict[str, Any] = field(default_factory=dict)
    binding: paging.CursorBinding | None = None
    after: list[Any] | None = None
    replay: Replay | None = None
    #: what ``spec.prepare`` computed before any transaction
    prepared: dict[str, Any] = field(default_factory=dict)
    answer: Answer | None = None
    #: a step that recorded its own refusal (cursor tampering) says so
    refusal_recorded: bool = False

    @classmethod
    def begin(
        cls,
        auth: Authority,
        incoming: Incoming,
        commands: Mapping[str, Mapping[str, CommandSpec]],
        roles: Roles,
        *,
        started: float | None = None,
    ) -> Call:
        return cls(
            auth=auth,
            incoming=incoming,
            commands=commands,
            roles=roles,
            now=auth.now(),
            started=time.perf_counter() if started is None else started,
        )

    @property
    def spec(self) -> CommandSpec:
        return _known(self.found, "the command")

    @property
    def caller(self) -> Caller:
        return _known(self.signed_in, "the caller")

    @property
    def scope(self) -> Scope:
        return _known(self.allowed, "the scope")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """The read's snapshot, or for a write a read transaction of its own."""
        if self.snapshot is not None:
            yield self.snapshot
            return
        with self.auth.store.read() as conn:
            yield conn

    def audit_fields(
        self,
        params: dict[str, Any],
        *,
        outcome: str,
        error: str | None,
        kind: str = "command",
        targets: list[str] | None = None,
    ) -> dict[str, Any]:
        caller = self.caller
        return {
            "tenant_id": caller.tenant.id,
            "type": kind,
            "outcome": outcome,
            "now": self.now,
            "actor_id": caller.subject,
            "actor_name": caller.name,
            "client_id": caller.client_id,
            "service": self.spec.service,
            "command": self.spec.name,
            "parameters": {
                k: ("[redacted]" if k in SECRET_PARAMETERS else v) for k, v in params.items()
            },
            "amr": list(caller.amr),
            "session_id": caller.session_id,
            "targets": targets or [],
            "error": error,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
        }

    def audit(self, conn: Connection, params: dict[str, Any], **how: Any) -> None:
        """Record the call in ``conn``'s transaction."""
        events.record(conn, **self.audit_fields(params, **how))

    def audit_alone(self, params: dict[str, Any], **how: Any) -> None:
        """Record the call in a transaction of its own (a refusal or a failure: the
        command's own transaction, if any, rolled back)."""
        with self.auth.store.begin() as conn:
            self.audit(conn, params, **how)


def _known(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"{what} is not known yet: a step runs out of order.")
    return value
