"""The command plane over HTTP: catalog, token checks, validation, roles, step-up, cursors,
idempotency and audit, on the directory service. (Role groups and scopes:
test_role_groups.py and test_role_matrix.py; the other services: test_*_service.py.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bastion.server.bootstrap import ROLE_NAMES
from bastion.store.schema import audit_events
from tests.support.flows import Org, device_sign_in, make_tenant, register_factor
from tests.support.server import ServerProcess


def run(
    t: Org, token: str | None, name: str, params: dict[str, Any], service: str = "directory"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{t.server.base_url}/api/{service}/commands/{name}", json=params, headers=headers
    )


def admin_token(t: Org, service: str = "directory") -> str:
    tokens = device_sign_in(t, t.admin, resource=t.audience(service))
    return str(tokens["access_token"])


def test_catalog_lists_commands_with_schemas(t: Org) -> None:
    body = httpx.get(f"{t.server.base_url}/api/directory/commands").json()
    names = {c["name"]: c for c in body["commands"]}
    assert {"Get-User", "New-User", "Set-UserMfa", "Remove-User"} <= names.keys()
    new_user = names["New-User"]
    assert new_user["help"].startswith("Create a user")
    assert new_user["parameters"]["additionalProperties"] is False
    assert "user_principal_name" in new_user["parameters"]["required"]
    assert names["Remove-User"]["sensitive"] is True
    assert (
        "passwordHash" not in str(new_user["output"])
        and "password" not in new_user["output"]["properties"]
    )


def test_admin_creates_and_reads_a_user(t: Org) -> None:
    token = admin_token(t)
    created = run(
        t,
        token,
        "New-User",
        {"user_principal_name": f"alex@{t.name}", "display_name": "Alex", "mfa_state": "enabled"},
    )
    assert created.status_code == 200, created.text
    user = created.json()["result"]
    assert user["userPrincipalName"] == f"alex@{t.name}" and user["mfaState"] == "enabled"
    read = run(t, token, "Get-User", {"identity": user["id"]})
    assert read.json() == {"items": [user], "next": None}
    missing = run(t, token, "Get-UserMfa", {"identity": f"nobody@{t.name}"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_tokens_are_checked(t: Org) -> None:
    none = run(t, None, "Get-User", {"identity": t.admin.username})
    assert none.status_code == 401 and none.headers["www-authenticate"] == 'Bearer realm="bastion"'
    mail_token = admin_token(t, "mail")
    wrong_audience = run(t, mail_token, "Get-User", {"identity": t.admin.username})
    assert wrong_audience.status_code == 401
    assert 'error="invalid_token"' in wrong_audience.headers["www-authenticate"]
    garbage = run(t, "abc.def.ghi", "Get-User", {"identity": t.admin.username})
    assert garbage.status_code == 401


def test_another_tenants_token_sees_nothing_here(server: ServerProcess) -> None:
    a, b = make_tenant(server), make_tenant(server)
    token = admin_token(a)
    other = run(a, token, "Get-User", {"identity": b.admin.username})
    assert other.status_code == 404  # as if it did not exist (R2)
    assert run(a, token, "Get-UserMfa", {"identity": b.admin.username}).status_code == 404


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"identity": "x", "tenant_id": "y"}, "tenant_id"),
        ({}, "identity"),
        ({"identity": 5}, "identity"),
        ({"identity": ""}, "identity"),
    ],
)
def test_bad_parameters_name_the_parameter(t: Org, params: dict[str, Any], named: str) -> None:
    response = run(t, admin_token(t), "Get-UserMfa", params)
    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == named
    assert named in body["detail"]


def test_roles_deny_by_default_and_denials_are_audited(t: Org) -> None:
    reader = device_sign_in(t, t.password_only, resource=t.audience("directory"))["access_token"]
    # sam has no role at all: everything is denied
    denied = run(t, reader, "Get-User", {"identity": t.admin.username})
    assert denied.status_code == 403
    assert denied.json()["command"] == "Get-User"
    with t.server.authority.store.begin() as conn:
        rows = conn.execute(
            select(audit_events).where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.type == "command",
                audit_events.c.outcome == "denied",
            )
        ).all()
    assert len(rows) == 1 and rows[0].data["command"] == "Get-User"


def test_helpdesk_resets_passwords_but_deletes_nothing(t: Org) -> None:
    from bastion.directory import users

    auth = t.server.authority
    with auth.store.begin() as conn:
        sam = users.require_user(conn, t.tenant.id, t.password_only.username)
        users.add_role(conn, sam, "Helpdesk", auth.now(), ROLE_NAMES)
    register_factor(t, t.password_only)  # a role holder signs in with two factors (A8)
    token = device_sign_in(t, t.password_only, resource=t.audience("directory"))["access_token"]
    reset = run(
        t, token, "Set-User", {"identity": t.enrolling.username, "password": "a new password"}
    )
    assert reset.status_code == 200, reset.text
    rename = run(t, token, "Set-User", {"identity": t.enrolling.username, "display_name": "x"})
    assert rename.status_code == 403
    assert run(t, token, "Remove-User", {"identity": t.enrolling.username}).status_code == 403
    with auth.store.begin() as conn:
        record = conn.execute(
            select(audit_events.c.data).where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.type == "command",
                audit_events.c.outcome == "success",
            )
        ).scalar_one()
    assert record["parameters"]["password"] == "[redacted]"
    assert "a new password" not in str(record)


def test_sensitive_command_needs_a_recent_second_factor(t: Org) -> None:
    token = admin_token(t)
    t.server.advance(t.tenant.policy.step_up_window + 60)
    challenged = run(
        t, token, "Set-UserMfa", {"identity": t.enrolling.username, "state": "enforced"}
    )
    assert challenged.status_code == 401
    header = challenged.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in header
    assert f"max_age={t.tenant.policy.step_up_window}" in header
    assert 'acr_values="urn:bastion:acr:2fa"' in header
    # a password-only sign-in never passes a sensitive command
    from bastion.directory import users

    weak = device_sign_in(t, t.password_only, resource=t.audience("directory"))["access_token"]
    with t.server.authority.store.begin() as conn:
        users.add_role(
            conn,
            users.require_user(conn, t.tenant.id, t.password_only.username),
            "Global Administrator",
            t.server.authority.now(),
            ROLE_NAMES,
        )
    assert run(t, weak, "Remove-User", {"identity": t.enrolling.username}).status_code == 401
    # a fresh two-factor sign-in passes
    fresh = admin_token(t)
    done = run(t, fresh, "Set-UserMfa", {"identity": t.enrolling.username, "state": "enforced"})
    assert done.status_code == 200, done.text
    assert done.json()["result"]["mfaState"] == "enforced"


def test_disable_user_ends_their_sessions_and_enable_lets_them_back(t: Org) -> None:
    victim = device_sign_in(t, t.password_only)
    token = admin_token(t)
    assert run(t, token, "Disable-User", {"identity": t.password_only.username}).status_code == 200
    from tests.support.flows import refresh

    assert refresh(t, victim["refresh_token"]).json()["error"] == "invalid_grant"
    # enabled again, they sign in again (the ended sign-in stays ended)
    enabled = run(t, token, "Enable-User", {"identity": t.password_only.username})
    assert enabled.status_code == 200 and enabled.json()["result"]["enabled"] is True
    assert refresh(t, victim["refresh_token"]).json()["error"] == "invalid_grant"
    assert device_sign_in(t, t.password_only)["access_token"]


def test_listing_pages_never_repeat_or_skip_across_inserts_and_deletes(t: Org) -> None:
    from bastion.server.bootstrap import new_user

    auth = t.server.authority
    with auth.store.begin() as conn:
        for i in range(60):
            new_user(
                auth,
                conn,
                t.tenant,
                upn=f"u{i:03d}@{t.name}",
                display_name=None,
                password=None,
                mfa_state="enforced",
            )
    token = admin_token(t)
    seen: list[str] = []
    cursor = None
    removed = added = False
    while True:
        params: dict[str, Any] = {"page_size": 7}
        if cursor:
            params["cursor"] = cursor
        page = run(t, token, "Get-User", params).json()
        seen += [u["userPrincipalName"] for u in page["items"]]
        if not removed and len(seen) > 20:
            # concurrent changes: one user behind the cursor, one ahead, one new
            with auth.store.begin() as conn:
                from bastion.directory import users

                users.delete_user(conn, users.require_user(conn, t.tenant.id, f"u050@{t.name}"))
                users.delete_user(conn, users.require_user(conn, t.tenant.id, f"u001@{t.name}"))
                new_user(
                    auth,
                    conn,
                    t.tenant,
                    upn=f"u999@{t.name}",
                    display_name=None,
                    password=None,
                    mfa_state="enforced",
                )
            removed = added = True
        cursor = page["next"]
        if cursor is None:
            break
    assert removed and added
    assert len(seen) == len(set(seen))
    for i in range(60):
        if i not in (50, 1):
            assert f"u{i:03d}@{t.name}" in seen
    assert seen == sorted(seen)


def test_cursors_are_signed_and_bound(server: ServerProcess) -> None:
    t, other = make_tenant(server), make_tenant(server)
    token = admin_token(t)
    first = run(t, token, "Get-User", {"page_size": 1}).json()
    cursor = first["next"]
    assert cursor
    body, mac = cursor.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    tampered = run(t, token, "Get-User", {"page_size": 1, "cursor": flipped})
    assert tampered.status_code == 400 and tampered.json()["type"].endswith("invalid-cursor")
    other_query = run(t, token, "Get-User", {"page_size": 1, "cursor": cursor, "enabled": True})
    assert other_query.status_code == 400
    other_token = admin_token(other)
    foreign = run(other, other_token, "Get-User", {"page_size": 1, "cursor": cursor})
    assert foreign.status_code == 400
    with server.authority.store.begin() as conn:
        rows = conn.execute(
            select(audit_events.c.id).where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.type == "security.cursor_tampering",
            )
        ).all()
    assert len(rows) == 2
    assert run(t, token, "Get-User", {"page_size": 0}).status_code == 400
    assert run(t, token, "Get-User", {"page_size": 1, "cursor": cursor}).status_code == 200


def test_groups_and_their_members(t: Org) -> None:
    token = admin_token(t)
    created = run(t, token, "New-Group", {"name": "Sales", "description": "The sales team"})
    assert created.status_code == 200, created.text
    group = created.json()["result"]
    assert group["memberCount"] == 0
    added = run(t, token, "Add-GroupMember", {"identity": "Sales", "member": t.enrolling.username})
    assert added.json()["result"]["memberCount"] == 1
    again = run(
        t, token, "Add-GroupMember", {"identity": group["id"], "member": t.enrolling.username}
    )
    assert again.json()["result"]["memberCount"] == 1
    listed = run(t, token, "Get-Group", {}).json()
    assert [g["name"] for g in listed["items"]] == ["Sales"]
    assert listed["items"][0]["memberCount"] == 1
    duplicate = run(t, token, "New-Group", {"name": "Sales"})
    assert duplicate.status_code == 409
    removed = run(
        t, token, "Remove-GroupMember", {"identity": "Sales", "member": t.enrolling.username}
    )
    assert removed.json()["result"]["memberCount"] == 0
    assert (
        run(
            t, token, "Remove-GroupMember", {"identity": "Sales", "member": t.enrolling.username}
        ).status_code
        == 404
    )
    assert run(t, token, "Remove-Group", {"identity": "Sales"}).status_code == 200
    assert run(t, token, "Get-Group", {"identity": "Sales"}).status_code == 404


def test_management_roles_are_listed(t: Org) -> None:
    token = admin_token(t)
    all_roles = run(t, token, "Get-ManagementRole", {}).json()["result"]
    names = {r["name"] for r in all_roles}
    assert {
        "Global Administrator",
        "Helpdesk",
        "Audit Reader",
        "Read-Only Reporting",
        "Mail Recipients Administrator",
        "Sites Administrator",
        "Chat Administrator",
    } == names
    helpdesk = run(t, token, "Get-ManagementRole", {"identity": "Helpdesk"}).json()["result"]
    assert any(
        e["command"] == "Set-User" and e["parameters"] == ["identity", "password"]
        for e in helpdesk[0]["entries"]
    )
    assert run(t, token, "Get-ManagementRole", {"identity": "Nope"}).status_code == 404


def test_a_command_whose_audit_record_cannot_be_written_changes_nothing(t: Org) -> None:
    """L5: with the audit table refusing writes, a write answers 503 and changes nothing."""
    from sqlalchemy import text

    token = admin_token(t)
    engine = t.server.authority.store.engine
    postgres = engine.dialect.name == "postgresql"
    with t.server.authority.store.begin() as conn:
        if postgres:
            conn.execute(
                text(
                    "CREATE FUNCTION block_audit() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'audit storage unavailable'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER block_audit BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION block_audit()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER block_audit BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END"
                )
            )
    try:
        response = run(t, token, "New-User", {"user_principal_name": f"ghost@{t.name}"})
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("audit-unavailable")
        # a read whose record cannot be committed is not answered either
        read = run(t, token, "Get-User", {})
        assert read.status_code == 503 and "items" not in read.json()
    finally:
        with t.server.authority.store.begin() as conn:
            conn.execute(
                text("DROP TRIGGER block_audit" + (" ON audit_events" if postgres else ""))
            )
            if postgres:
                conn.execute(text("DROP FUNCTION block_audit()"))
    listed = run(t, token, "Get-User", {"identity": f"ghost@{t.name}"})
    assert listed.status_code == 404  # the user was not created
    verified = t.server.cli("audit", "verify", "--tenant", t.name)
    assert verified.returncode == 0


def test_concurrent_reads_are_each_audited_once_in_one_intact_chain(t: Org) -> None:
    """Reads' records are committed together (group commit): none lost, none doubled."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func

    token = admin_token(t)

    def count() -> int:
        with t.server.authority.store.begin() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(audit_events)
                    .where(
                        audit_events.c.tenant_id == t.tenant.id,
                        audit_events.c.data["command"].as_string() == "Get-User",
                    )
                ).scalar_one()
            )

    before = count()
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: run(t, token, "Get-User", {}), range(64)))
    assert [a.status_code for a in answers] == [200] * 64
    assert count() == before + 64
    verified = t.server.cli("audit", "verify", "--tenant", t.name)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_retried_write_with_the_same_idempotency_key_applies_once(t: Org) -> None:
    token = admin_token(t)
    url = f"{t.server.base_url}/api/directory/commands/New-Group"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "5f0c-retry-1"}
    first = httpx.post(url, json={"name": "Ops"}, headers=headers)
    again = httpx.post(url, json={"name": "Ops"}, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    listed = run(t, token, "Get-Group", {"identity": "Ops"}).json()["items"]
    assert len(listed) == 1
    other = httpx.post(url, json={"name": "Other"}, headers=headers)
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    # without a key, the same write is simply a conflict the second time
    assert run(t, token, "New-Group", {"name": "Ops"}).status_code == 409


def test_racing_retries_with_one_key_apply_once(t: Org) -> None:
    import threading

    token = admin_token(t)
    url = f"{t.server.base_url}/api/directory/commands/New-User"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"}
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        answers.append(
            httpx.post(url, json={"user_principal_name": f"racer@{t.name}"}, headers=headers)
        )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["result"]["id"] for a in answers}) == 1
    assert len(run(t, token, "Get-User", {"identity": f"racer@{t.name}"}).json()["items"]) == 1


def test_search_audit_log_filters_and_pages(t: Org) -> None:
    from bastion.directory import users

    token = admin_token(t)
    run(t, token, "New-Group", {"name": "Audited"})
    sam = device_sign_in(t, t.password_only, resource=t.audience("directory"))["access_token"]
    register_factor(t, t.password_only)  # for the sign-in once sam holds a role (A8)
    run(t, sam, "Get-User", {})  # denied: sam has no role yet
    with t.server.authority.store.begin() as conn:
        users.add_role(
            conn,
            users.require_user(conn, t.tenant.id, t.password_only.username),
            "Audit Reader",
            t.server.authority.now(),
            ROLE_NAMES,
        )
    # a role holder's password-only token opens nothing (A8): sam signs in again
    sam = device_sign_in(t, t.password_only, resource=t.audience("directory"))["access_token"]
    sign_ins = run(t, sam, "Search-AuditLog", {"record_type": "sign_in."}).json()
    assert sign_ins["items"] and all(r["type"].startswith("sign_in.") for r in sign_ins["items"])
    created = run(t, sam, "Search-AuditLog", {"command_name": "New-Group"}).json()["items"]
    assert len(created) == 1 and created[0]["actorName"] == t.admin.username
    assert created[0]["data"]["parameters"] == {"name": "Audited", "description": ""}
    denied = run(t, sam, "Search-AuditLog", {"outcome": "denied"}).json()["items"]
    assert [r["data"]["command"] for r in denied] == ["Get-User"]
    mine = run(t, sam, "Search-AuditLog", {"actor": t.password_only.username}).json()["items"]
    assert mine and all(r["actorName"] == t.password_only.username for r in mine)
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"page_size": 2}
        if cursor:
            params["cursor"] = cursor
        page = run(t, sam, "Search-AuditLog", params).json()
        seen += [r["seq"] for r in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) and seen[0] == 1
    future = run(t, sam, "Search-AuditLog", {"start": "2999-01-01T00:00:00Z"}).json()
    assert future["items"] == []
    assert run(t, sam, "Get-User", {}).status_code == 403  # an audit reader reads only the log
