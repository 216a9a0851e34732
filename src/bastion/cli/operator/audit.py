"""``bastion audit verify``, ``head`` and ``tail``: the tamper-evident audit log (L4).

``verify --anchor`` takes a head kept from earlier: ``SEQ:HASH``, or the JSON that
``audit head --export`` and ``verify --json`` print (its signature is checked), inline or as
``@FILE``.

Both read the store directly, like the bootstrap commands, in a read-only snapshot that holds
up no sign-in. They need the master key of the data directory (checkpoints are signed with a
key derived from it) and refuse to create one: a new key would make every checkpoint look
forged.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bastion.cli.operator.storage import StorageFlags, add_storage_options
from bastion.core.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from bastion.core.secrets_at_rest import Keyring
    from bastion.directory.tenants import Tenant
    from bastion.store.engine import Store

_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def register(commands: Any) -> None:
    audit = commands.add_parser("audit", help="check and read the tamper-evident audit log")
    sub = audit.add_subparsers(dest="action", metavar="ACTION", required=True)

    verify = sub.add_parser(
        "verify",
        help="check a tenant's audit chain and signed checkpoints; exit 1 at the first problem",
    )
    verify.add_argument("--tenant", required=True, help="tenant name")
    verify.add_argument(
        "--anchor",
        metavar="ANCHOR",
        help="a head kept outside the database from earlier: SEQ:HASH, or the JSON printed by "
        "'audit head --export' or 'audit verify --json' (inline or @FILE). The chain must "
        "still hold that record (detects a cut, or an older copy of the database)",
    )
    verify.add_argument(
        "--json", action="store_true", help="print the report, and the head to keep, as JSON"
    )
    add_storage_options(verify)
    verify.set_defaults(handler=lambda args: run_verify(VerifyOptions.from_args(args)))

    head = sub.add_parser("head", help="print a tenant's signed chain head, to keep elsewhere")
    head.add_argument("--tenant", required=True, help="tenant name")
    head.add_argument(
        "--export",
        action="store_true",
        help="print it as one JSON line for 'audit verify --anchor' (exit 1 if the head's "
        "signature does not verify)",
    )
    add_storage_options(head)
    head.set_defaults(
        handler=lambda args: run_head(
            HeadOptions(args.tenant, args.export, StorageFlags.from_args(args))
        )
    )

    tail = sub.add_parser("tail", help="print a tenant's last audit records as JSON lines")
    tail.add_argument("--tenant", required=True, help="tenant name")
    tail.add_argument(
        "-n", "--lines", type=int, default=20, metavar="N", help="how many (default 20)"
    )
    add_storage_options(tail)
    tail.set_defaults(
        handler=lambda args: run_tail(
            TailOptions(args.tenant, args.lines, StorageFlags.from_args(args))
        )
    )


@contextmanager
def _open(storage: StorageFlags) -> Iterator[tuple[Store, Keyring]]:
    from bastion.core.secrets_at_rest import Keyring, load_or_create_master_key
    from bastion.store.engine import open_store

    settings = storage.settings()
    key_file = settings.resolved_master_key_file
    if not key_file.exists():
        raise ConfigError(
            f"no master key at {key_file}.",
            hint="Point --data-dir (or BASTION_MASTER_KEY_FILE) at the server's data directory.",
        )
    keyring = Keyring(load_or_create_master_key(key_file))
    store = open_store(settings.resolved_database_url, keyring=keyring)
    try:
        yield store, keyring
    finally:
        store.dispose()


def _anchor_text(value: str) -> str:
    if not value.startswith("@"):
        return value.strip()
    path = Path(value[1:])
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the anchor file {path}: {exc.strerror}.") from exc


def _parse_anchor(value: str | None, tenant: Tenant, keyring: Keyring) -> tuple[int, str] | None:
    """``(seq, hash)`` from ``SEQ:HASH`` or an exported head; an exported head must be this
    tenant's and carry a valid signature."""
    from bastion.audit.chain import head_valid

    if value is None:
        return None
    text = _anchor_text(value)
    match = _ANCHOR.match(text.lower())
    if match:
        return int(match.group(1)), match.group(2)
    try:
        exported = json.loads(text)
    except ValueError:
        exported = None
    if isinstance(exported, dict) and isinstance(exported.get("head"), dict):
        exported = exported["head"]  # the JSON of 'audit verify --json'
    if not isinstance(exported, dict):
        raise UsageError(
            f"'{value}' is not an anchor.",
            hint="Give SEQ:HASH, or the JSON of 'audit head --export' (inline or @FILE).",
        )
    seq, hash_ = exported.get("seq"), exported.get("hash")
    if not (
        isinstance(seq, int)
        and not isinstance(seq, bool)
        and seq >= 0
        and isinstance(hash_, str)
        and _HASH.match(hash_)
    ):
        raise UsageError("the anchor needs a seq (a whole number) and a hash (64 hex digits).")
    if exported.get("tenant_id", tenant.id) != tenant.id:
        raise UsageError(
            f"the anchor is a head of another tenant ({exported.get('tenant', '?')}).",
            hint=f"Export the head of {tenant.name}.",
        )
    signature = exported.get("signature")
    if signature is not None and not (
        isinstance(signature, str) and head_valid(keyring, tenant.id, seq, hash_, signature)
    ):
        raise UsageError(
            "the anchor's signature is not valid: it was altered, or exported with another "
            "master key.",
        )
    return seq, hash_


def _exported(tenant: Tenant, keyring: Keyring, seq: int, hash_: str) -> dict[str, Any]:
    from bastion.audit.chain import head_signature

    return {
        "tenant": tenant.name,
        "tenant_id": tenant.id,
        "seq": seq,
        "hash": hash_,
        "signature": head_signature(keyring, tenant.id, seq, hash_),
    }


@dataclass(frozen=True)
class VerifyOptions:
    tenant: str
    anchor: str | None
    as_json: bool
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> VerifyOptions:
        return cls(args.tenant, args.anchor, args.json, StorageFlags.from_args(args))


def run_verify(options: VerifyOptions) -> int:
    from bastion.audit.verify import snapshot, verify
    from bastion.directory.tenants import get_tenant

    out, err = options.out, options.err
    with _open(options.storage) as (store, keyring), snapshot(store) as conn:
        tenant = get_tenant(conn, options.tenant)
        anchor = _parse_anchor(options.anchor, tenant, keyring)
        report = verify(conn, keyring, tenant.id, anchor=anchor)
    if options.as_json:
        print(
            json.dumps(
                {
                    "tenant": tenant.name,
                    "ok": report.ok,
                    "records": report.records,
                    "checkpoints": report.checkpoints,
                    "problem": None
                    if report.problem is None
                    else {
                        "kind": report.problem.kind,
                        "seq": report.problem.seq,
                        "record_id": report.problem.record_id,
                        "description": str(report.problem),
                    },
                    "head": _exported(tenant, keyring, report.last_seq, report.last_hash)
                    if report.ok
                    else None,
                },
                ensure_ascii=True,
            ),
            file=out,
        )
        return 0 if report.ok else 1
    if report.problem is not None:
        print(f"audit chain of tenant {tenant.name} is NOT intact: {report.problem}", file=out)
        print(
            f"  ({report.records} records and {report.checkpoints} checkpoints checked before it)",
            file=err,
        )
        return 1
    print(
        f"audit chain of tenant {tenant.name} verified: {report.records} records, "
        f"{report.checkpoints} checkpoints",
        file=out,
    )
    if report.records:
        print(
            f"anchor: {report.last_seq}:{report.last_hash}  (keep it elsewhere; pass it to "
            "--anchor next time, or keep 'bastion audit head --export')",
            file=err,
        )
    return 0


@dataclass(frozen=True)
class HeadOptions:
    tenant: str
    export: bool
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)


def run_head(options: HeadOptions) -> int:
    from sqlalchemy import select

    from bastion.audit.chain import GENESIS, head_valid
    from bastion.audit.verify import snapshot
    from bastion.directory.tenants import get_tenant
    from bastion.store.schema import audit_heads

    with _open(options.storage) as (store, keyring), snapshot(store) as conn:
        tenant = get_tenant(conn, options.tenant)
        row = conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == tenant.id)).first()
    seq, hash_ = (int(row.seq), row.hash) if row is not None else (0, GENESIS)
    signature = row.signature if row is not None else None
    if not head_valid(keyring, tenant.id, seq, hash_, signature):
        print(
            f"the audit chain head of tenant {tenant.name} (seq {seq}) is not validly signed; "
            "run: bastion audit verify --tenant " + tenant.name,
            file=options.err,
        )
        return 1
    if options.export:
        print(
            json.dumps(_exported(tenant, keyring, seq, hash_), ensure_ascii=True), file=options.out
        )
    else:
        print(f"tenant {tenant.name}: seq {seq}, hash {hash_} (signed)", file=options.out)
    return 0


@dataclass(frozen=True)
class TailOptions:
    tenant: str
    lines: int
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)


def run_tail(options: TailOptions) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from bastion.audit.verify import snapshot
    from bastion.directory.tenants import get_tenant
    from bastion.store.schema import audit_events

    if options.lines < 1:
        raise UsageError("-n must be at least 1.")
    ev = audit_events.c
    with _open(options.storage) as (store, _keyring), snapshot(store) as conn:
        tenant = get_tenant(conn, options.tenant)
        rows = conn.execute(
            select(audit_events)
            .where(ev.tenant_id == tenant.id)
            .order_by(ev.seq.desc())
            .limit(options.lines)
        ).all()
    for row in reversed(rows):
        when = datetime.fromtimestamp(row.time, UTC).isoformat().replace("+00:00", "Z")
        line = {
            "seq": row.seq,
            "id": row.id,
            "time": when,
            "type": row.type,
            "outcome": row.outcome,
            "actor_id": row.actor_id,
            "actor_name": row.actor_name,
            "client_id": row.client_id,
            "source": row.source,
            "request_id": row.request_id,
            "data": row.data,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
        print(json.dumps(line, ensure_ascii=True), file=options.out)
    return 0
