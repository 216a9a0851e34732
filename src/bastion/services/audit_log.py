"""Search-AuditLog and Export-AuditLog: the tenant's audit records as resumable listings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from bastion.directory.applications import find_application
from bastion.plane.command_context import CommandContext
from bastion.plane.listings import Listing
from bastion.plane.service import Commands
from bastion.store.schema import audit_events

#: the directory service's commands for the audit log (``bastion.services.directory`` includes them)
commands = Commands()


class AuditRecord(BaseModel):
    seq: int
    time: datetime
    type: str
    actorId: str | None
    actorName: str | None
    clientId: str | None
    source: str | None
    requestId: str | None
    outcome: str
    data: dict[str, Any]


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        time=datetime.fromtimestamp(row.time, UTC),
        type=row.type,
        actorId=row.actor_id,
        actorName=row.actor_name,
        clientId=row.client_id,
        source=row.source,
        requestId=row.request_id,
        outcome=row.outcome,
        data=row.data,
    )


@commands.command("Search-AuditLog", lists=True)
def search_audit_log(
    ctx: CommandContext,
    *,
    start: Annotated[
        datetime | None, Field(description="Only records at or after this time (ISO 8601).")
    ] = None,
    end: Annotated[
        datetime | None, Field(description="Only records before this time (ISO 8601).")
    ] = None,
    actor: Annotated[
        str | None,
        Field(
            max_length=320,
            description="Only this actor: a user id or name, or an application's appId or "
            "display name.",
        ),
    ] = None,
    record_type: Annotated[
        str | None,
        Field(max_length=64, description="Only this type, or a prefix ending in '.': sign_in."),
    ] = None,
    service: Annotated[str | None, Field(max_length=32, description="Only this service.")] = None,
    command_name: Annotated[
        str | None, Field(max_length=64, description="Only this command, e.g. Remove-User.")
    ] = None,
    outcome: Annotated[
        Literal["success", "failure", "denied", "replayed"] | None,
        Field(description="Only this outcome."),
    ] = None,
) -> Listing[AuditRecord]:
    """Audit records of sign-ins and commands, oldest first, filtered by time, actor, type,
    service, command and outcome."""
    table = audit_events
    query = select(table).where(table.c.tenant_id == ctx.tenant.id)
    if start is not None:
        query = query.where(table.c.time >= _epoch(start))
    if end is not None:
        query = query.where(table.c.time < _epoch(end))
    if actor is not None:
        which = (table.c.actor_id == actor) | (table.c.actor_name == actor.lower())
        app = find_application(ctx.conn, ctx.tenant.id, actor)
        if app is not None:  # an application is recorded by its id
            which = which | (table.c.actor_id == app.id)
        query = query.where(which)
    if record_type is not None:
        if record_type.endswith("."):
            query = query.where(table.c.type.startswith(record_type, autoescape=True))
        else:
            query = query.where(table.c.type == record_type)
    if service is not None:
        query = query.where(table.c.data["service"].as_string() == service)
    if command_name is not None:
        query = query.where(table.c.data["command"].as_string() == command_name)
    if outcome is not None:
        query = query.where(table.c.outcome == outcome)
    return Listing(query=query, key=(table.c.seq,), to_item=_record)


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class ExportedRecord(AuditRecord):
    """A record with its place in the tenant's hash chain, so a copy can be verified."""

    tenantId: str
    prevHash: str
    hash: str


@commands.command("Export-AuditLog", lists=True, sensitive=True)
def export_audit_log(
    ctx: CommandContext,
    *,
    from_seq: Annotated[
        int, Field(ge=1, description="The first record to export (its seq); 1 for all.")
    ] = 1,
) -> Listing[ExportedRecord]:
    """Export the tenant's audit records in chain order with their hashes, to keep a copy
    outside Bastion that can be checked against the chain (``bastion audit verify``)."""
    table = audit_events
    query = select(table).where(table.c.tenant_id == ctx.tenant.id, table.c.seq >= from_seq)
    return Listing(
        query=query,
        key=(table.c.seq,),
        to_item=lambda row: ExportedRecord(
            **_record(row).model_dump(),
            tenantId=row.tenant_id,
            prevHash=row.prev_hash,
            hash=row.hash,
        ),
    )
