"""The refresh grace window never forks a family (T5; docs/decisions/0002 and 0020).

Within the window, a retry of the token just rotated (a lost response, or a second process
sharing a stale cache) gets the same successor again; only a presentation outside the
window, or of a token older than the previous one, revokes the family.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import Connection, Select, func, select

from bastion.authority.clients import find_client
from bastion.authority.grants.grant import TokenRequest
from bastion.authority.grants.table import grant_for
from bastion.authority.tokens import REFRESH_GRACE_SECONDS
from bastion.store.group_commit import GroupCommit
from bastion.store.schema import audit_events, refresh_tokens
from tests.support.flows import Org, device_sign_in, refresh
from tests.support.plane import run

PARALLEL = 20


def count(t: Org, query: Select[int]) -> int:
    with t.server.authority.store.begin() as conn:
        return int(conn.execute(query).scalar_one())


def reuse_events(t: Org) -> int:
    return count(
        t,
        select(func.count())
        .select_from(audit_events)
        .where(
            audit_events.c.tenant_id == t.tenant.id,
            audit_events.c.type == "token.refresh_reuse",
        ),
    )


def family_size(t: Org) -> int:
    return count(
        t,
        select(func.count())
        .select_from(refresh_tokens)
        .where(refresh_tokens.c.tenant_id == t.tenant.id),
    )


def introspector(t: Org) -> tuple[str, str]:
    out = t.server.cli(
        "client", "create", "--tenant", t.name, "grace-intro", "--name", "grace-intro",
        "--confidential",
    ).stdout  # fmt: skip
    return "grace-intro", json.loads(out)["client_secret"]


def test_parallel_refreshes_of_one_token_get_one_successor(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    directory = t.audience("directory")
    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(lambda _: refresh(t, rt1, resource=directory), range(PARALLEL)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    successors = {a.json()["refresh_token"] for a in answers}
    assert len(successors) == 1
    (rt2,) = successors
    assert rt2 != rt1
    assert family_size(t) == 2  # the sign-in's token and its one successor: no branches
    # The access tokens may differ, but every one of them is valid.
    creds = introspector(t)
    for answer in answers:
        token = answer.json()["access_token"]
        assert run(t, token, "Get-User", {}).status_code == 403  # authenticated, no role
        active = httpx.post(f"{t.issuer}/oauth2/introspect", data={"token": token}, auth=creds)
        assert active.json()["active"] is True
    # The one successor carries the sign-in on; nothing tripped reuse detection.
    assert refresh(t, rt2).status_code == 200
    assert reuse_events(t) == 0


def test_a_lost_response_is_answered_with_the_same_successor(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    rt2 = refresh(t, rt1).json()["refresh_token"]
    t.server.advance(REFRESH_GRACE_SECONDS - 1)
    retry = refresh(t, rt1)  # the first response was lost
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == rt2
    assert refresh(t, rt2).status_code == 200
    assert reuse_events(t) == 0


def test_two_processes_sharing_a_stale_cache_keep_going(t: Org) -> None:
    """Process A rotates the token; process B, which read the cache before A wrote it back,
    presents the old one within the window and gets A's successor, so both hold the same
    token again. Whichever uses it next rotates it, and the other's copy is then the
    immediately previous token: the same rule covers it for the window. A copy older than
    that, or presented after the window, is reuse and ends the sign-in."""
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    a = refresh(t, rt1).json()["refresh_token"]
    b = refresh(t, rt1).json()["refresh_token"]
    assert a == b  # B caught up with A
    t.server.advance(2)
    a = refresh(t, a).json()["refresh_token"]  # A rotates further: B's copy is stale
    t.server.advance(2)
    answer = refresh(t, b)
    assert answer.status_code == 200, answer.text
    b = answer.json()["refresh_token"]
    assert a == b  # B caught up again, with the same token A holds
    assert reuse_events(t) == 0
    # A token two rotations back is not a lost response: the family is revoked.
    reused = refresh(t, rt1)
    assert reused.json()["error"] == "invalid_grant"
    assert "already used" in reused.json()["error_description"]
    assert refresh(t, a).json()["error"] == "invalid_grant"
    assert reuse_events(t) == 1


def test_a_stale_copy_after_the_window_revokes_the_family(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    a = refresh(t, rt1).json()["refresh_token"]
    t.server.advance(REFRESH_GRACE_SECONDS + 1)
    late = refresh(t, rt1)
    assert late.json()["error"] == "invalid_grant"
    assert refresh(t, a).json()["error"] == "invalid_grant"
    assert reuse_events(t) == 1


def test_a_retry_after_the_successor_was_used_is_reuse(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    rt2 = refresh(t, rt1).json()["refresh_token"]
    rt3 = refresh(t, rt2).json()["refresh_token"]
    assert refresh(t, rt1).json()["error"] == "invalid_grant"  # within the window, but old
    assert refresh(t, rt3).json()["error"] == "invalid_grant"
    assert reuse_events(t) == 1


def test_an_ended_sign_in_gets_no_grace(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    refresh(t, rt1)
    t.server.cli("user", "disable", "--tenant", t.name, t.password_only.username)
    answer = refresh(t, rt1)
    assert answer.json()["error"] == "invalid_grant"
    assert "revoked" in answer.json()["error_description"]


def test_two_presentations_of_one_token_in_one_batch_get_one_successor(t: Org) -> None:
    """Group commit runs concurrent grants in one transaction; a batch holding the same
    token twice must not fork its family. The grants run through the token endpoint's own
    code, in a writer queue of this process on the server's database: a first unit holds its
    writer thread until both presentations are queued, so they form the next batch together."""
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    auth = t.server.authority
    writes = GroupCommit(auth.store)
    size = family_size(t)
    queued = threading.Event()

    def hold(conn: Connection) -> None:
        queued.wait(timeout=30)

    def present(conn: Connection) -> dict[str, Any]:
        with auth.store.read() as reading:
            client = find_client(reading, t.tenant.id, "bastion-cli")
        assert client is not None
        grant = grant_for("refresh_token")
        return grant.respond(
            TokenRequest(
                auth=auth,
                conn=conn,
                tenant=t.tenant,
                issuer=t.issuer,
                audiences={},
                client=client,
                form=grant.declared({"refresh_token": rt1}),
                now=auth.now(),
            )
        )

    before = writes.batches
    with ThreadPoolExecutor(3) as pool:
        holder = pool.submit(writes.run, hold)
        while writes.waiting:  # the holder is taken into its batch
            threading.Event().wait(0.001)
        answers = [pool.submit(writes.run, present) for _ in range(2)]
        while writes.waiting < 2:
            threading.Event().wait(0.001)
        queued.set()
        holder.result()
        first, second = (answer.result() for answer in answers)
    assert writes.batches == before + 2
    assert first["refresh_token"] == second["refresh_token"]
    assert family_size(t) == size + 1
    assert reuse_events(t) == 0
    assert refresh(t, first["refresh_token"]).status_code == 200
    writes.close()
