"""``bastion audit verify`` and ``bastion audit tail``: the tamper-evident audit log (L4).

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
from typing import TYPE_CHECKING, Any

from bastion.cli.common import add_storage_options, settings_from
from bastion.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from bastion.secrets_at_rest import Keyring
    from bastion.store.engine import Store

_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


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
        metavar="SEQ:HASH",
        help="the 'anchor' printed by an earlier verify, kept outside the database: the chain "
        "must still hold that record (detects a cut back to an older checkpoint)",
    )
    add_storage_options(verify)
    verify.set_defaults(handler=_verify)

    tail = sub.add_parser("tail", help="print a tenant's last audit records as JSON lines")
    tail.add_argument("--tenant", required=True, help="tenant name")
    tail.add_argument(
        "-n", "--lines", type=int, default=20, metavar="N", help="how many (default 20)"
    )
    add_storage_options(tail)
    tail.set_defaults(handler=_tail)


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[tuple[Store, Keyring]]:
    from bastion.secrets_at_rest import Keyring, load_or_create_master_key
    from bastion.store.engine import open_store

    settings = settings_from(args)
    key_file = settings.resolved_master_key_file
    if not key_file.exists():
        raise ConfigError(
            f"no master key at {key_file}.",
            hint="Point --data-dir (or BASTION_MASTER_KEY_FILE) at the server's data directory.",
        )
    keyring = Keyring(load_or_create_master_key(key_file))
    store = open_store(settings.resolved_database_url)
    try:
        yield store, keyring
    finally:
        store.dispose()


def _parse_anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    match = _ANCHOR.match(value.strip().lower())
    if not match:
        raise UsageError(
            f"'{value}' is not an anchor.", hint="Give SEQ:HASH as printed by audit verify."
        )
    return int(match.group(1)), match.group(2)


def _verify(args: argparse.Namespace) -> int:
    from bastion.audit.verify import snapshot, verify
    from bastion.directory.tenants import get_tenant

    anchor = _parse_anchor(args.anchor)
    with _open(args) as (store, keyring), snapshot(store) as conn:
        tenant = get_tenant(conn, args.tenant)
        report = verify(conn, keyring, tenant.id, anchor=anchor)
    if report.problem is not None:
        print(f"audit chain of tenant {tenant.name} is NOT intact: {report.problem}")
        print(
            f"  ({report.records} records and {report.checkpoints} checkpoints checked before it)",
            file=sys.stderr,
        )
        return 1
    print(
        f"audit chain of tenant {tenant.name} verified: {report.records} records, "
        f"{report.checkpoints} checkpoints"
    )
    if report.records:
        print(
            f"anchor: {report.last_seq}:{report.last_hash}  (keep it elsewhere; pass it to "
            "--anchor next time)",
            file=sys.stderr,
        )
    return 0


def _tail(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from bastion.audit.verify import snapshot
    from bastion.directory.tenants import get_tenant
    from bastion.store.schema import audit_events

    if args.lines < 1:
        raise UsageError("-n must be at least 1.")
    ev = audit_events.c
    with _open(args) as (store, _keyring), snapshot(store) as conn:
        tenant = get_tenant(conn, args.tenant)
        rows = conn.execute(
            select(audit_events)
            .where(ev.tenant_id == tenant.id)
            .order_by(ev.seq.desc())
            .limit(args.lines)
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
        print(json.dumps(line, ensure_ascii=True))
    return 0
