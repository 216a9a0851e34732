"""The tamper-evident audit log (L4): every tampering an attacker with database access can do
to a tenant's 1,000 records is reported by ``bastion audit verify``, naming the first bad
record; the untouched log verifies.

Records are written in-process with ``bastion.audit.events.record`` on the server's store;
the tampering is plain SQL; the verdicts come from the CLI (a separate process, as an
operator runs it) and from ``verify()`` in-process where only the report's fields matter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, select, update

from bastion.audit import events
from bastion.audit.chain import CHECKPOINT_EVERY, checkpoint_signature, record_hash
from bastion.audit.verify import VerifyReport, snapshot, verify
from bastion.store.schema import audit_checkpoints, audit_events, audit_heads
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess

RECORDS = 1000


def write_records(t: Org, count: int = RECORDS) -> None:
    """``count`` varied records for the tenant, in one transaction."""
    start = t.server.now()
    with t.server.authority.store.begin() as conn:
        for i in range(count):
            events.record(
                conn,
                tenant_id=t.tenant.id,
                type="test.event" if i % 3 else "sign_in.success",
                outcome="success" if i % 5 else "failure",
                now=start + i / 1000,
                actor_id=f"user-{i % 7}",
                actor_name=f'user{i % 7}@{t.name}\n{{"fake":1}}' if i == 17 else None,
                client_id="bastion-cli" if i % 2 else None,
                n=i,
                note=f"record {i}: café ✓",
                detail={"list": [i, 1.5, None, True], "empty": {}, "ratio": i / 7},
            )


@pytest.fixture(autouse=True)
def records(request: pytest.FixtureRequest) -> None:
    """The tenant ``t`` of every test that takes it starts with ``RECORDS`` records."""
    if "t" in request.fixturenames:
        write_records(request.getfixturevalue("t"))


def audit_verify(t: Org, *extra: str) -> tuple[int, str]:
    result = t.server.cli("audit", "verify", "--tenant", t.name, *extra, check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, result.stdout + result.stderr


def verify_in_process(t: Org, anchor: tuple[int, str] | None = None) -> VerifyReport:
    auth = t.server.authority
    with snapshot(auth.store) as conn:
        return verify(conn, auth.keyring, t.tenant.id, anchor=anchor)


def row_at(conn: Connection, t: Org, seq: int) -> Any:
    return conn.execute(
        select(audit_events).where(
            audit_events.c.tenant_id == t.tenant.id, audit_events.c.seq == seq
        )
    ).one()


def set_seq(conn: Connection, t: Org, record_id: int, seq: int) -> None:
    conn.execute(update(audit_events).where(audit_events.c.id == record_id).values(seq=seq))


def set_head(conn: Connection, t: Org, seq: int, hash_: str, checkpoint_seq: int) -> None:
    conn.execute(
        update(audit_heads)
        .where(audit_heads.c.tenant_id == t.tenant.id)
        .values(seq=seq, hash=hash_, checkpoint_seq=checkpoint_seq)
    )


def rehash_from(conn: Connection, t: Org, seq: int) -> str:
    """What an attacker can do without the key: recompute every hash from ``seq`` on."""
    prev = row_at(conn, t, seq - 1).hash
    last = seq - 1
    for row in conn.execute(
        select(audit_events)
        .where(audit_events.c.tenant_id == t.tenant.id, audit_events.c.seq >= seq)
        .order_by(audit_events.c.seq)
    ).all():
        digest = record_hash(row._mapping, prev)
        conn.execute(
            update(audit_events)
            .where(audit_events.c.id == row.id)
            .values(prev_hash=prev, hash=digest)
        )
        prev, last = digest, row.seq
    set_head(conn, t, last, prev, (last // CHECKPOINT_EVERY) * CHECKPOINT_EVERY)
    return prev


def test_the_untouched_log_verifies(t: Org) -> None:
    code, out = audit_verify(t)
    assert code == 0, out
    assert f"audit chain of tenant {t.name} verified: {RECORDS} records, 10 checkpoints" in out
    report = verify_in_process(t)
    assert report.ok and report.last_seq == RECORDS
    # the anchor printed for keeping elsewhere is the last record
    assert f"anchor: {RECORDS}:{report.last_hash}" in out
    assert verify_in_process(t, anchor=(RECORDS, report.last_hash)).ok

    tail = t.server.cli("audit", "tail", "--tenant", t.name, "-n", "3").stdout.splitlines()
    assert [json.loads(line)["seq"] for line in tail] == [RECORDS - 2, RECORDS - 1, RECORDS]
    assert json.loads(tail[-1])["data"]["n"] == RECORDS - 1
    assert json.loads(tail[-1])["time"].endswith("Z")


def test_one_changed_byte_names_the_edited_record(t: Org) -> None:
    with t.server.authority.store.begin() as conn:
        row = row_at(conn, t, 437)
        data = dict(row.data)
        data["note"] = data["note"].replace("record", "recorD", 1)  # one byte
        conn.execute(update(audit_events).where(audit_events.c.id == row.id).values(data=data))
    code, out = audit_verify(t)
    assert code == 1
    assert f"seq 437, record id {row.id}: the record was edited" in out
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "edited"
    assert (report.problem.seq, report.problem.record_id) == (437, row.id)


def test_a_deleted_record_leaves_a_gap(t: Org) -> None:
    with t.server.authority.store.begin() as conn:
        conn.execute(
            delete(audit_events).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.seq == 612
            )
        )
    code, out = audit_verify(t)
    assert code == 1
    assert "seq 612: seq 612 missing: the chain jumps from seq 611 to seq 613" in out
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "deleted"
    assert report.problem.seq == 612


@pytest.mark.parametrize("what", ["contents", "seq"])
def test_two_swapped_records_are_found(t: Org, what: str) -> None:
    content = ("type", "outcome", "actor_id", "actor_name", "client_id", "data", "time")
    with t.server.authority.store.begin() as conn:
        a, b = row_at(conn, t, 250), row_at(conn, t, 260)
        if what == "contents":
            for mine, theirs in ((a, b), (b, a)):
                conn.execute(
                    update(audit_events)
                    .where(audit_events.c.id == mine.id)
                    .values({name: getattr(theirs, name) for name in content})
                )
        else:  # swap the places in the chain (seq is unique: go through -1)
            set_seq(conn, t, a.id, -1)
            set_seq(conn, t, b.id, 250)
            set_seq(conn, t, a.id, 260)
    report = verify_in_process(t)
    assert report.problem is not None
    # the row now at seq 250: a with b's contents, or b moved to a's place
    at_250 = a.id if what == "contents" else b.id
    assert report.problem.seq == 250 and report.problem.record_id == at_250
    assert report.problem.kind == ("edited" if what == "contents" else "reordered")


def test_a_forged_record_in_the_middle_is_found(t: Org) -> None:
    """The forger shifts the later records up, links the forgery and moves the head."""
    with t.server.authority.store.begin() as conn:
        before = row_at(conn, t, 349)
        moved = row_at(conn, t, 350)
        head = conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == t.tenant.id)).one()
        later = audit_events.c.seq >= 350
        mine = audit_events.c.tenant_id == t.tenant.id
        conn.execute(update(audit_events).where(mine, later).values(seq=-audit_events.c.seq))
        conn.execute(
            update(audit_events)
            .where(mine, audit_events.c.seq < 0)
            .values(seq=-audit_events.c.seq + 1)
        )
        forged = {
            "tenant_id": t.tenant.id,
            "seq": 350,
            "time": moved.time,
            "type": "sign_in.success",
            "actor_id": "intruder",
            "actor_name": f"admin@{t.name}",
            "client_id": None,
            "source": "10.0.0.1",
            "request_id": None,
            "outcome": "success",
            "data": {"amr": ["pwd", "otp"]},
        }
        forged_id = conn.execute(
            insert(audit_events).values(
                **forged, prev_hash=before.hash, hash=record_hash(forged, before.hash)
            )
        ).inserted_primary_key[0]
        set_head(conn, t, head.seq + 1, head.hash, head.checkpoint_seq)
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "inserted"
    assert report.problem.seq == 351 and report.problem.record_id == moved.id
    assert f"(id {forged_id})" in report.problem.description
    assert "one of them was inserted" in str(report.problem)


def test_a_forged_record_beyond_the_head_is_found(server: ServerProcess) -> None:
    t = make_tenant(server)
    write_records(t, 150)
    with server.authority.store.begin() as conn:
        last = row_at(conn, t, 150)
        forged = {**dict(last._mapping), "seq": 151, "data": {"forged": True}}
        del forged["id"], forged["prev_hash"], forged["hash"]
        forged_id = conn.execute(
            insert(audit_events).values(
                **forged, prev_hash=last.hash, hash=record_hash(forged, last.hash)
            )
        ).inserted_primary_key[0]
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "inserted"
    assert (report.problem.seq, report.problem.record_id) == (151, forged_id)
    assert "beyond the end of the chain" in report.problem.description


def test_a_cut_after_a_checkpoint_is_found(t: Org) -> None:
    """The attacker deletes the last 500 records and moves the head back consistently."""
    anchor = verify_in_process(t)
    assert anchor.ok
    with t.server.authority.store.begin() as conn:
        keep = row_at(conn, t, 500)
        conn.execute(
            delete(audit_events).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.seq > 500
            )
        )
        set_head(conn, t, 500, keep.hash, 500)
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "truncated"
    assert "seq 600: a signed checkpoint names seq 600, but the chain ends at seq 500" in str(
        report.problem
    )

    # Deleting the later checkpoints too leaves a chain that is consistent in itself, but
    # the moved head carries no valid signature; the anchor kept from the earlier verify
    # still shows the cut.
    with t.server.authority.store.begin() as conn:
        conn.execute(
            delete(audit_checkpoints).where(
                audit_checkpoints.c.tenant_id == t.tenant.id, audit_checkpoints.c.seq > 500
            )
        )
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "head"
    assert "the head (seq 500) has an invalid signature" in str(report.problem)
    code, out = audit_verify(t, "--anchor", f"{anchor.last_seq}:{anchor.last_hash}")
    assert code == 1 and "the anchor names seq 1000, but the chain ends at seq 500" in out


def test_a_rewritten_chain_does_not_match_its_checkpoints(t: Org) -> None:
    """Recomputing every hash after an edit fixes the links but not the signed checkpoints."""
    with t.server.authority.store.begin() as conn:
        row = row_at(conn, t, 733)
        conn.execute(
            update(audit_events)
            .where(audit_events.c.id == row.id)
            .values(outcome="success", data={**row.data, "n": -1})
        )
        rehash_from(conn, t, 733)
        cp = row_at(conn, t, 800)
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "checkpoint"
    assert (report.problem.seq, report.problem.record_id) == (800, cp.id)
    assert "differs from the one its signed checkpoint holds" in report.problem.description


def test_a_forged_checkpoint_has_a_bad_signature(t: Org) -> None:
    """After a rewrite the attacker re-signs the checkpoints, but not with Bastion's key."""
    wrong_key = b"\x01" * 32
    with t.server.authority.store.begin() as conn:
        row = row_at(conn, t, 905)
        conn.execute(
            update(audit_events).where(audit_events.c.id == row.id).values(outcome="failure")
        )
        rehash_from(conn, t, 905)
        for cp_seq in (1000,):
            new_hash = row_at(conn, t, cp_seq).hash
            message = json.dumps(
                ["bastion-audit-checkpoint", 1, t.tenant.id, cp_seq, new_hash],
                separators=(",", ":"),
            ).encode()
            conn.execute(
                update(audit_checkpoints)
                .where(
                    audit_checkpoints.c.tenant_id == t.tenant.id,
                    audit_checkpoints.c.seq == cp_seq,
                )
                .values(
                    hash=new_hash,
                    signature=hmac.new(wrong_key, message, hashlib.sha256).hexdigest(),
                )
            )
    # the real key would have signed the same message into a different signature
    assert checkpoint_signature(t.server.authority.keyring, t.tenant.id, 1000, new_hash) != (
        hmac.new(wrong_key, message, hashlib.sha256).hexdigest()
    )
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "checkpoint"
    assert report.problem.seq == 1000
    code, out = audit_verify(t)
    assert code == 1 and "seq 1000: the checkpoint's signature is not valid" in out


# -- the end of the chain (issue 9 item 13): the head is signed at every append ------------


def head_row(conn: Connection, t: Org) -> Any:
    return conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == t.tenant.id)).one()


def test_a_rewritten_tail_after_the_last_checkpoint_is_found(t: Org) -> None:
    """Fewer than 100 records after the last checkpoint, rewritten with recomputed hashes and
    the head moved to match: no checkpoint covers them, the head's signature does."""
    write_records(t, 50)  # seq 1001..1050; the last checkpoint is at 1000
    assert verify_in_process(t).ok
    with t.server.authority.store.begin() as conn:
        row = row_at(conn, t, 1030)
        conn.execute(
            update(audit_events)
            .where(audit_events.c.id == row.id)
            .values(outcome="success", data={**row.data, "n": -1})
        )
        rehash_from(conn, t, 1030)
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "head"
    code, out = audit_verify(t)
    assert code == 1
    assert "the head (seq 1050) has an invalid signature" in out

    # The next append does not bless the rewritten tail by signing a head built on it: it
    # chains a record saying what it found, and verify names that record from then on.
    write_records(t, 1)
    report = verify_in_process(t)
    assert report.problem is not None and report.problem.kind == "head"
    assert report.problem.seq == 1051
    assert "(seq 1050) had an invalid signature" in report.problem.description
    with t.server.authority.store.begin() as conn:
        assert row_at(conn, t, 1051).type == "audit.head_unverified"


def test_a_cut_tail_with_the_head_moved_back_is_found(t: Org) -> None:
    write_records(t, 50)
    with t.server.authority.store.begin() as conn:
        keep = row_at(conn, t, 1020)
        conn.execute(
            delete(audit_events).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.seq > 1020
            )
        )
        set_head(conn, t, 1020, keep.hash, 1000)
    code, out = audit_verify(t)
    assert code == 1
    assert "the head (seq 1020) has an invalid signature" in out
    # without a signature at all, the same
    with t.server.authority.store.begin() as conn:
        conn.execute(
            update(audit_heads).where(audit_heads.c.tenant_id == t.tenant.id).values(signature=None)
        )
    code, out = audit_verify(t)
    assert code == 1 and "the head (seq 1020) carries no signature" in out


def test_an_exported_head_is_an_anchor(t: Org, tmp_path: Any) -> None:
    """A head exported earlier (``audit head --export``, or ``verify --json``) and kept
    elsewhere shows what the database alone cannot: the chain cut back to an older head
    together with that head's signature, copied when it was current (an older copy)."""
    with t.server.authority.store.begin() as conn:
        old_head = head_row(conn, t)
    write_records(t, 30)
    exported = t.server.cli("audit", "head", "--tenant", t.name, "--export").stdout.strip()
    head = json.loads(exported)
    assert head["tenant"] == t.name and head["seq"] == RECORDS + 30
    assert set(head) == {"tenant", "tenant_id", "seq", "hash", "signature"}
    kept = tmp_path / "head.json"
    kept.write_text(exported + "\n")
    report = json.loads(t.server.cli("audit", "verify", "--tenant", t.name, "--json").stdout)
    assert report["ok"] and report["head"] == head
    assert audit_verify(t, "--anchor", f"@{kept}")[0] == 0
    assert audit_verify(t, "--anchor", json.dumps(report))[0] == 0

    # Back to the old head, its signature included: consistent in itself.
    with t.server.authority.store.begin() as conn:
        conn.execute(
            delete(audit_events).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.seq > RECORDS
            )
        )
        conn.execute(
            update(audit_heads)
            .where(audit_heads.c.tenant_id == t.tenant.id)
            .values(
                seq=old_head.seq,
                hash=old_head.hash,
                checkpoint_seq=old_head.checkpoint_seq,
                signature=old_head.signature,
            )
        )
    assert audit_verify(t)[0] == 0
    code, out = audit_verify(t, "--anchor", f"@{kept}")
    assert code == 1
    assert f"the anchor names seq {RECORDS + 30}, but the chain ends at seq {RECORDS}" in out

    # An anchor that was altered, or that belongs to another tenant, is refused as such.
    forged = {**head, "seq": RECORDS}
    refused = t.server.cli(
        "audit", "verify", "--tenant", t.name, "--anchor", json.dumps(forged), check=False
    )
    assert refused.returncode == 2 and "signature is not valid" in refused.stderr
    other = make_tenant(t.server)
    refused = t.server.cli(
        "audit", "verify", "--tenant", other.name, "--anchor", exported, check=False
    )
    assert refused.returncode == 2 and "another tenant" in refused.stderr
    assert "Traceback" not in refused.stderr
