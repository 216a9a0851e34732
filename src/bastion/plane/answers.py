"""What a command's run produces: its answer, and the idempotency record a write's retry
replays (the pipeline's steps fill them in; ``bastion.plane.call.Call`` carries them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from bastion.core import json_codec
from bastion.plane import idempotency
from bastion.plane.command_context import Caller


@dataclass(frozen=True)
class Replay:
    """The ``Idempotency-Key`` of a write, and what its first answer is stored under."""

    key: str
    command: str
    digest: str

    def stored(self, conn: Connection, caller: Caller) -> dict[str, Any] | None:
        return idempotency.stored(
            conn,
            tenant_id=caller.tenant.id,
            subject=caller.subject,
            key=self.key,
            command=self.command,
            params_digest=self.digest,
        )


@dataclass(frozen=True)
class Answer:
    """A command's answer, already JSON, and the ids of the objects it names (for audit)."""

    content: bytes
    targets: list[str]
    replayed: bool = False

    @classmethod
    def stored(cls, body: dict[str, Any]) -> Answer:
        return cls(json_bytes(body), [], replayed=True)


def json_bytes(body: Any) -> bytes:
    return json_codec.dumps(body)
