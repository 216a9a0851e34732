"""A populated organisation for demonstrations and benchmarks: people in departments, with
mailboxes, team sites and chat policy assignments.

Rows are written in bulk (many thousands per statement and per transaction), not through
the commands, so that a million mailboxes take minutes: a command per object would spend
its time on tokens, roles and audit records that a seed does not need. Seeded people have
no password and cannot sign in until an administrator gives them one. Seeding is
resumable: it counts the people already seeded and adds the rest.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from bastion.audit import events
from bastion.core.ids import new_id
from bastion.store.engine import Store
from bastion.store.schema import (
    chat_policies,
    chat_policy_assignments,
    mail_addresses,
    mailboxes,
    site_members,
    sites,
    users,
)

DEPARTMENTS = (
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "Legal",
    "Support",
    "Operations",
    "People",
)
FIRST = (
    "Alex", "Bea", "Cas", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea",
    "Milo", "Nia", "Oli", "Pia", "Quin", "Rae", "Sol", "Tess", "Uma", "Vik", "Wren", "Yara",
)  # fmt: skip
LAST = (
    "Adler", "Berg", "Costa", "Diaz", "Engel", "Fox", "Gray", "Holm", "Ito", "Jansen",
    "Kovac", "Lund", "Moreau", "Novak", "Okafor", "Park", "Quist", "Rossi", "Silva", "Tanaka",
)  # fmt: skip
#: a chat policy for some departments, so assignments are not all Global
DEPARTMENT_POLICIES = {
    "Legal": ("meeting", "No recording", {"allowRecording": False, "allowTranscription": False}),
    "Support": ("messaging", "Support desk", {"allowGiphy": False, "allowDeleteMessages": False}),
}
SITE_EVERY = 20  # one team site per twenty people, owned by one of them
PREFIX = "user"
BATCH = 5000


@dataclass(frozen=True)
class Seeded:
    added: int
    total: int
    seconds: float


def seeded_count(store: Store, tenant_id: str, domain: str) -> int:
    with store.begin() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(users)
                .where(
                    users.c.tenant_id == tenant_id,
                    users.c.upn.like(f"{PREFIX}%@{domain}"),
                )
            ).scalar_one()
        )


def seed_population(
    store: Store,
    tenant_id: str,
    *,
    domain: str,
    count: int,
    now: float,
    progress: Callable[[int, int], None] | None = None,
) -> Seeded:
    """Make sure ``count`` seeded people exist in the tenant, with their objects."""
    started = time.perf_counter()
    have = seeded_count(store, tenant_id, domain)
    if have >= count:
        return Seeded(0, have, 0.0)
    policy_ids = _department_policies(store, tenant_id, now)
    for start in range(have, count, BATCH):
        stop = min(start + BATCH, count)
        rows = _batch(tenant_id, domain, start, stop, now, policy_ids)
        with store.begin() as conn:
            for table, values in rows:
                if values:
                    conn.execute(insert(table), values)
        if progress is not None:
            progress(stop, count)
    with store.begin() as conn:
        # Fresh statistics, so the planner picks the indexes for pages and lookups (on
        # PostgreSQL, a table that grew by a million rows otherwise gets sorted per page).
        for table in (users, mailboxes, mail_addresses, sites, site_members):
            conn.exec_driver_sql(f"ANALYZE {table.name}")
        events.record(
            conn,
            tenant_id=tenant_id,
            type="directory.seed",
            outcome="success",
            now=now,
            added=count - have,
            total=count,
        )
    return Seeded(count - have, count, time.perf_counter() - started)


def _department_policies(store: Store, tenant_id: str, now: float) -> dict[str, str]:
    from bastion.directory.chat_policies import SETTINGS

    found: dict[str, str] = {}
    with store.begin() as conn:
        for department, (kind, name, changes) in DEPARTMENT_POLICIES.items():
            policy_id = conn.execute(
                select(chat_policies.c.id).where(
                    chat_policies.c.tenant_id == tenant_id,
                    chat_policies.c.kind == kind,
                    chat_policies.c.name == name,
                )
            ).scalar()
            if policy_id is None:
                policy_id = new_id()
                settings = SETTINGS[kind]().model_dump(mode="json") | changes
                conn.execute(
                    insert(chat_policies).values(
                        id=policy_id,
                        tenant_id=tenant_id,
                        kind=kind,
                        name=name,
                        description=f"For the {department} department.",
                        settings=settings,
                        created_at=now,
                    )
                )
            found[department] = policy_id
    return found


def _batch(
    tenant_id: str, domain: str, start: int, stop: int, now: float, policy_ids: dict[str, str]
) -> list[tuple[Any, list[dict[str, Any]]]]:
    people: list[dict[str, Any]] = []
    boxes: list[dict[str, Any]] = []
    addresses: list[dict[str, Any]] = []
    team_sites: list[dict[str, Any]] = []
    owners: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    for i in range(start, stop):
        # not secret: the same made-up figures for the same person every time
        rng = random.Random(i)  # noqa: S311
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        department = DEPARTMENTS[i % len(DEPARTMENTS)]
        user_id, mailbox_id = new_id(), new_id()
        upn = f"{PREFIX}{i:07d}@{domain}"
        people.append(
            {
                "id": user_id,
                "tenant_id": tenant_id,
                "upn": upn,
                "display_name": f"{first} {last}",
                "enabled": True,
                "mfa_state": "enforced",
                "password_hash": None,
                "password_failures": 0,
                "recovery_failures": 0,
                "created_at": now,
                "department": department,
            }
        )
        alias = f"{first}.{last}.{i}@{domain}".lower()
        boxes.append(
            {
                "id": mailbox_id,
                "tenant_id": tenant_id,
                "user_id": user_id,
                "type": "user",
                "display_name": f"{first} {last}",
                "primary_address": upn,
                "aliases": [alias],
                "quota_mb": 51200,
                "forwarding_address": None,
                "deliver_and_forward": False,
                "litigation_hold": department == "Legal",
                "litigation_hold_since": now if department == "Legal" else None,
                "inactive": False,
                "item_count": rng.randrange(0, 60000),
                "total_size_bytes": rng.randrange(0, 40 * 1024**3),
                "last_logon_at": now - rng.randrange(0, 90 * 86400),
                "created_at": now,
            }
        )
        addresses.append(
            {"tenant_id": tenant_id, "address": upn, "mailbox_id": mailbox_id, "is_primary": True}
        )
        addresses.append(
            {
                "tenant_id": tenant_id,
                "address": alias,
                "mailbox_id": mailbox_id,
                "is_primary": False,
            }
        )
        if i % SITE_EVERY == 0:
            site_id = new_id()
            team_sites.append(
                {
                    "id": site_id,
                    "tenant_id": tenant_id,
                    "url": f"/teams/{department.lower()}-{i // SITE_EVERY:06d}",
                    "title": f"{department} team {i // SITE_EVERY}",
                    "owner_id": user_id,
                    "storage_quota_mb": 25600,
                    "storage_used_mb": rng.randrange(0, 20000),
                    "sharing": "ExistingExternalUsers",
                    "created_at": now,
                }
            )
            owners.append(
                {"tenant_id": tenant_id, "site_id": site_id, "user_id": user_id, "role": "Owner"}
            )
        if department in policy_ids:
            kind = DEPARTMENT_POLICIES[department][0]
            assignments.append(
                {
                    "tenant_id": tenant_id,
                    "user_id": user_id,
                    "kind": kind,
                    "policy_id": policy_ids[department],
                }
            )
    return [
        (users, people),
        (mailboxes, boxes),
        (mail_addresses, addresses),
        (sites, team_sites),
        (site_members, owners),
        (chat_policy_assignments, assignments),
    ]
