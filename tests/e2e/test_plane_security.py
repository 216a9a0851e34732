"""Command-plane security items not covered elsewhere: principals by id (R4), no secret in
any output (R5), and what every command's audit record holds (L1, L2)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bastion.services import SERVICES
from bastion.store.schema import audit_events
from tests.support.flows import Org, make_tenant, register_factor
from tests.support.plane import Tokens, run
from tests.support.server import ServerProcess, running_server

SECRET_NAMES = re.compile(r"password|secret|seed|token|recovery|codehash|totp", re.IGNORECASE)


def _property_names(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found |= set(value)
            found |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _property_names(value)
    return found


def test_no_command_output_can_carry_a_secret() -> None:
    """R5: a schema scan of every command's declared output (the answer is dumped through
    it, so an undeclared field never leaves)."""
    scanned = 0
    for service in SERVICES:
        for spec in service:
            names = _property_names(spec.output.json_schema())
            leaking = sorted(n for n in names if SECRET_NAMES.search(n))
            assert not leaking, f"{spec.service} {spec.name} outputs {leaking}"
            scanned += 1
    assert scanned >= 40


def test_a_renamed_user_keeps_their_roles_because_principals_are_ids(t: Org) -> None:
    """R4: the plane looks callers up by (iss, sub), never by name."""
    admin = Tokens(t, t.admin)
    added = admin.run(
        "directory",
        "Add-RoleGroupMember",
        {"identity": "Helpdesk", "member": t.password_only.username},
    )
    assert added.status_code == 200, added.text
    sam = Tokens(t, register_factor(t, t.password_only))  # a role holder: two factors (A8)
    renamed = admin.run(
        "directory",
        "Set-User",
        {"identity": t.password_only.username, "user_principal_name": f"samuel@{t.name}"},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["result"]["userPrincipalName"] == f"samuel@{t.name}"
    # the token still names the old user name; the roles follow the id
    still = sam.run("directory", "Get-User", {"identity": f"samuel@{t.name}"})
    assert still.status_code == 200, still.text
    assert [u["id"] for u in still.json()["items"]] == [renamed.json()["result"]["id"]]
    clash = admin.run(
        "directory",
        "Set-User",
        {"identity": t.enrolling.username, "user_principal_name": f"samuel@{t.name}"},
    )
    assert clash.status_code == 409


def test_every_command_record_names_actor_target_request_and_outcome(t: Org) -> None:
    """L1 and L2: allowed and denied commands each leave one structured record."""
    admin = Tokens(t, t.admin)
    # X3: a forwarded-for header from a peer that is not a configured proxy is ignored
    created = run(
        t,
        admin("directory"),
        "New-Group",
        {"name": "Auditors"},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert created.status_code == 200
    group_id = created.json()["result"]["id"]
    request_id = created.headers["x-request-id"]
    sam = Tokens(t, t.password_only)
    denied = sam.run("directory", "Remove-Group", {"identity": "Auditors"})
    assert denied.status_code == 403
    with t.server.authority.store.begin() as conn:
        rows = conn.execute(
            select(audit_events).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.type == "command"
            )
        ).all()
    by_command = {(r.data["command"], r.outcome): r for r in rows}
    record = by_command[("New-Group", "success")]
    assert record.request_id == request_id
    assert record.source == "127.0.0.1"
    assert record.client_id == "bastion-cli"
    assert record.actor_name == t.admin.username and record.actor_id
    assert record.data["service"] == "directory"
    assert record.data["targets"] == [group_id]
    assert record.data["parameters"] == {"name": "Auditors", "description": ""}
    assert "totp" in record.data["amr"] or "otp" in record.data["amr"]
    assert record.data["session_id"] and record.data["duration_ms"] >= 0
    refusal = by_command[("Remove-Group", "denied")]
    assert refusal.actor_name == t.password_only.username
    assert refusal.data["error"] == "forbidden"


@pytest.fixture
def behind_proxy(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that trusts the loopback peer as its reverse proxy."""
    with running_server(backend, tmp_path, extra=["--trusted-proxy", "127.0.0.1"]) as proc:
        yield proc


def test_a_configured_proxy_names_the_client_address_in_records(
    behind_proxy: ServerProcess,
) -> None:
    """X3: through a configured proxy, X-Forwarded-For is the source that audit records show."""
    t = make_tenant(behind_proxy)
    token = Tokens(t, t.admin)("directory")
    answer = run(
        t, token, "New-Group", {"name": "Proxied"}, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert answer.status_code == 200, answer.text
    with behind_proxy.authority.store.begin() as conn:
        sources = conn.execute(
            select(audit_events.c.source).where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.data["command"].as_string() == "New-Group",
            )
        ).scalars()
        assert list(sources) == ["203.0.113.7"]
