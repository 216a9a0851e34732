"""A listing of 100,000 mailboxes that survives token expiry, a server restart and
concurrent inserts and deletes: every mailbox that existed throughout comes exactly once.

The listing is read a page at a time by cursor, as a client does. While it runs, mailboxes
are added on both sides of the current position and removed both from what was already read
and from what is still ahead.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, insert, select

from bastion.core.ids import new_id
from bastion.server import seed
from bastion.store.schema import mailboxes
from tests.support.flows import Org, device_sign_in, make_tenant, refresh
from tests.support.server import ServerProcess, running_server

TOTAL = 100_000
PAGE = 1000


@pytest.fixture
def own_server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own: it is restarted in the middle."""
    with running_server(backend, tmp_path) as proc:
        yield proc


def _shared_mailbox(t: Org, address: str, now: float) -> dict[str, object]:
    return {
        "id": new_id(),
        "tenant_id": t.tenant.id,
        "user_id": None,
        "type": "shared",
        "display_name": address,
        "primary_address": address,
        "aliases": [],
        "quota_mb": 51200,
        "forwarding_address": None,
        "deliver_and_forward": False,
        "litigation_hold": False,
        "litigation_hold_since": None,
        "inactive": False,
        "item_count": 0,
        "total_size_bytes": 0,
        "last_logon_at": None,
        "created_at": now,
    }


def test_a_long_listing_survives_expiry_restart_and_concurrent_changes(
    own_server: ServerProcess,
) -> None:
    server = own_server
    t = make_tenant(server)
    auth = server.authority
    seed.seed_population(auth.store, t.tenant.id, domain=t.name, count=TOTAL, now=auth.now())
    with auth.store.begin() as conn:
        initial = set(
            conn.execute(
                select(mailboxes.c.id).where(mailboxes.c.tenant_id == t.tenant.id)
            ).scalars()
        )
    assert len(initial) == TOTAL
    tokens = device_sign_in(t, t.admin, resource=t.audience("mail"))
    access, refresh_token = tokens["access_token"], tokens["refresh_token"]
    rng = random.Random(7)
    removed: set[str] = set()
    seen: list[str] = []
    cursor: str | None = None
    renewed = restarted = 0
    page_number = 0
    while True:
        params: dict[str, object] = {"page_size": PAGE}
        if cursor is not None:
            params["cursor"] = cursor
        answer = httpx.post(
            f"{server.base_url}/api/mail/commands/Get-Mailbox",
            json=params,
            headers={"Authorization": f"Bearer {access}"},
            timeout=60,
        )
        if answer.status_code == 401:
            # the access token expired mid-listing: renew it, and go on from the same cursor
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]
            renewed_tokens = refresh(t, refresh_token, resource=t.audience("mail"))
            assert renewed_tokens.status_code == 200, renewed_tokens.text
            access = renewed_tokens.json()["access_token"]
            refresh_token = renewed_tokens.json()["refresh_token"]
            renewed += 1
            continue
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next"]
        page_number += 1
        if cursor is None:
            break
        if page_number == 20:
            # past the lifetime and the 60 s allowed for clock skew
            server.advance(t.tenant.policy.access_token_lifetime + 120)
        if page_number == 45:
            server.restart()
            auth = server.authority
            restarted += 1
        # other administrators at work: add mailboxes before and after the position, and
        # remove some already listed and some still ahead
        now = auth.now()
        with auth.store.begin() as conn:
            conn.execute(
                insert(mailboxes),
                [
                    _shared_mailbox(t, f"{prefix}-{page_number}-{i}@{t.name}", now)
                    for prefix in ("aaa", "zzz")
                    for i in range(5)
                ],
            )
            behind = [m for m in rng.sample(seen, 3) if m in initial]
            ahead_pool = list(initial - set(seen) - removed)
            ahead = rng.sample(ahead_pool, min(5, len(ahead_pool)))
            gone = set(behind) | set(ahead)
            conn.execute(delete(mailboxes).where(mailboxes.c.id.in_(gone)))
            removed |= gone
    assert renewed == 1 and restarted == 1
    assert len(seen) == len(set(seen)), "a mailbox was listed twice"
    missing = (initial - removed) - set(seen)
    assert not missing, f"{len(missing)} mailboxes that existed throughout were skipped"
    assert page_number >= TOTAL // PAGE
