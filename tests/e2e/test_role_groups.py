"""Role groups: built-in and custom, members that are users or groups, scopes by group,
effect on the next command, lock-out protection; Export-AuditLog; what removing a user does."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from bastion.server import seed
from bastion.store.schema import audit_events, chat_policy_assignments, mailboxes, sites, users
from tests.support.flows import Org, register_factor
from tests.support.plane import Tokens


def ok(response: object) -> dict:  # type: ignore[type-arg]
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


def test_built_in_role_groups_are_listed_with_their_members(t: Org) -> None:
    admin = Tokens(t, t.admin)
    groups = {g["name"]: g for g in ok(admin.run("directory", "Get-RoleGroup", {}))["result"]}
    assert set(groups) == {
        "Global Administrator",
        "Mail Recipients Administrator",
        "Helpdesk",
        "Sites Administrator",
        "Chat Administrator",
        "Audit Reader",
        "Read-Only Reporting",
    }
    assert all(g["builtIn"] and g["scope"] is None for g in groups.values())
    assert [m["name"] for m in groups["Global Administrator"]["members"]] == [t.admin.username]
    one = ok(admin.run("directory", "Get-RoleGroup", {"identity": "Helpdesk"}))["result"]
    assert [g["roles"] for g in one] == [["Helpdesk"]]
    missing = admin.run("directory", "Get-RoleGroup", {"identity": "Nobody"})
    assert missing.status_code == 404


def test_a_group_in_a_scoped_role_group_grants_its_members_roles_within_the_scope(
    t: Org,
) -> None:
    admin = Tokens(t, t.admin)
    for upn in ("ann", "bob"):
        ok(admin.run("directory", "New-User", {"user_principal_name": f"{upn}@{t.name}"}))
    ok(admin.run("directory", "New-Group", {"name": "Team A"}))
    ok(admin.run("directory", "New-Group", {"name": "Helpdesk staff"}))
    ok(admin.run("directory", "Add-GroupMember", {"identity": "Team A", "member": f"ann@{t.name}"}))
    ok(
        admin.run(
            "directory",
            "Add-GroupMember",
            {"identity": "Helpdesk staff", "member": t.password_only.username},
        )
    )
    created = ok(
        admin.run(
            "directory",
            "New-RoleGroup",
            {"name": "Team A helpdesk", "roles": ["Helpdesk"], "scope_group": "Team A"},
        )
    )["result"]
    assert created["scope"]["groupName"] == "Team A" and not created["builtIn"]
    added = ok(
        admin.run(
            "directory",
            "Add-RoleGroupMember",
            {"identity": "Team A helpdesk", "member": "Helpdesk staff"},
        )
    )["result"]
    assert [(m["kind"], m["name"]) for m in added["members"]] == [("group", "Helpdesk staff")]

    # sam holds Helpdesk through the group "Helpdesk staff", limited to Team A's members
    sam = Tokens(t, register_factor(t, t.password_only))  # a role holder: two factors (A8)
    listed = ok(sam.run("directory", "Get-User", {}))["items"]
    assert [u["userPrincipalName"] for u in listed] == [f"ann@{t.name}"]
    reset = sam.run(
        "directory", "Set-User", {"identity": f"ann@{t.name}", "password": "a fresh password"}
    )
    assert reset.status_code == 200, reset.text
    outside = sam.run(
        "directory", "Set-User", {"identity": f"bob@{t.name}", "password": "a fresh password"}
    )
    assert outside.status_code == 403 and "scope" in outside.json()["detail"]
    tenant_wide = sam.run("directory", "Get-Group", {})
    assert tenant_wide.status_code == 403
    with t.server.authority.store.begin() as conn:
        denied = conn.execute(
            select(audit_events.c.data).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.outcome == "denied"
            )
        ).all()
    assert {d.data["command"] for d in denied} >= {"Set-User", "Get-Group"}

    # leaving the group takes effect on the very next command, with the same token
    ok(
        admin.run(
            "directory",
            "Remove-GroupMember",
            {"identity": "Helpdesk staff", "member": t.password_only.username},
        )
    )
    assert sam.run("directory", "Get-User", {}).status_code == 403


def test_removing_a_role_group_member_takes_effect_on_the_next_command(t: Org) -> None:
    admin = Tokens(t, t.admin)
    ok(
        admin.run(
            "directory",
            "Add-RoleGroupMember",
            {"identity": "Read-Only Reporting", "member": t.password_only.username},
        )
    )
    sam = Tokens(t, register_factor(t, t.password_only))  # a role holder: two factors (A8)
    assert sam.run("mail", "Get-Mailbox", {}).status_code == 200
    removed = admin.run(
        "directory",
        "Remove-RoleGroupMember",
        {"identity": "Read-Only Reporting", "member": t.password_only.username},
    )
    assert removed.status_code == 200, removed.text
    again = sam.run("mail", "Get-Mailbox", {})
    assert again.status_code == 403 and again.json()["command"] == "Get-Mailbox"
    not_member = admin.run(
        "directory",
        "Remove-RoleGroupMember",
        {"identity": "Read-Only Reporting", "member": t.password_only.username},
    )
    assert not_member.status_code == 404


def test_role_group_rules(t: Org) -> None:
    admin = Tokens(t, t.admin)
    last = admin.run(
        "directory",
        "Remove-RoleGroupMember",
        {"identity": "Global Administrator", "member": t.admin.username},
    )
    assert last.status_code == 409 and "last user" in last.json()["detail"]
    built_in = admin.run("directory", "Remove-RoleGroup", {"identity": "Helpdesk"})
    assert built_in.status_code == 409
    unknown = admin.run("directory", "New-RoleGroup", {"name": "X", "roles": ["Superuser"]})
    assert unknown.status_code == 400 and unknown.json()["parameter"] == "roles"
    both = admin.run(
        "directory",
        "New-RoleGroup",
        {"name": "X", "roles": ["Helpdesk"], "scope_department": "A", "scope_group": "B"},
    )
    assert both.status_code == 400
    no_group = admin.run(
        "directory", "New-RoleGroup", {"name": "X", "roles": ["Helpdesk"], "scope_group": "B"}
    )
    assert no_group.status_code == 404
    ok(admin.run("directory", "New-RoleGroup", {"name": "X", "roles": ["Helpdesk"]}))
    taken = admin.run("directory", "New-RoleGroup", {"name": "X", "roles": ["Helpdesk"]})
    assert taken.status_code == 409
    gone = ok(admin.run("directory", "Remove-RoleGroup", {"identity": "X"}))["result"]
    assert gone["name"] == "X"
    # changing role groups is sensitive: a password-only sign-in never passes
    weak_sign_in = Tokens(t, t.password_only)  # before the role: the password alone
    ok(
        admin.run(
            "directory",
            "Add-RoleGroupMember",
            {"identity": "Global Administrator", "member": t.password_only.username},
        )
    )
    weak = weak_sign_in.run(
        "directory", "Add-RoleGroupMember", {"identity": "Helpdesk", "member": t.admin.username}
    )
    assert weak.status_code == 401
    assert "insufficient_user_authentication" in weak.headers["www-authenticate"]


def test_export_audit_log_is_sensitive_and_carries_the_chain(t: Org) -> None:
    admin = Tokens(t, t.admin)
    for name in ("G1", "G2", "G3"):
        ok(admin.run("directory", "New-Group", {"name": name}))
    first = ok(admin.run("directory", "Export-AuditLog", {"page_size": 2}))
    assert len(first["items"]) == 2 and first["next"]
    rest = ok(
        admin.run("directory", "Export-AuditLog", {"page_size": 1000, "cursor": first["next"]})
    )
    records = first["items"] + rest["items"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert all(b["prevHash"] == a["hash"] for a, b in itertools.pairwise(records))
    assert records[0]["prevHash"] == "0" * 64
    from_seq = ok(admin.run("directory", "Export-AuditLog", {"from_seq": 3}))["items"]
    assert from_seq[0]["seq"] == 3
    # the Audit Reader role allows it, but only with a recent second factor
    ok(
        admin.run(
            "directory",
            "Add-RoleGroupMember",
            {"identity": "Audit Reader", "member": t.password_only.username},
        )
    )
    sam = Tokens(t, register_factor(t, t.password_only))  # a role holder: two factors (A8)
    t.server.advance(t.tenant.policy.step_up_window + 60)
    assert sam.run("directory", "Search-AuditLog", {}).status_code == 200
    assert sam.run("directory", "Export-AuditLog", {}).status_code == 401


def test_removing_a_user_deletes_or_keeps_their_objects_as_documented(t: Org) -> None:
    auth = t.server.authority
    # seeded people: #0 is in Sales and owns a team site; #4 is in Legal, on litigation hold,
    # with a Legal meeting policy
    seed.seed_population(auth.store, t.tenant.id, domain=t.name, count=8, now=auth.now())
    admin = Tokens(t, t.admin)
    owner = ok(admin.run("directory", "Remove-User", {"identity": f"user0000000@{t.name}"}))
    assert owner["result"]["sitesLeftOwnerless"] == 1
    assert owner["result"]["mailboxesDeleted"] == 1
    held = ok(admin.run("directory", "Remove-User", {"identity": f"user0000004@{t.name}"}))
    assert held["result"]["mailboxesKeptInactive"] == 1
    assert held["result"]["mailboxesDeleted"] == 0
    with auth.store.begin() as conn:
        boxes = conn.execute(
            select(mailboxes.c.primary_address, mailboxes.c.user_id, mailboxes.c.inactive).where(
                mailboxes.c.tenant_id == t.tenant.id,
                mailboxes.c.primary_address.in_([f"user0000000@{t.name}", f"user0000004@{t.name}"]),
            )
        ).all()
        site_owners = conn.execute(
            select(sites.c.owner_id).where(sites.c.tenant_id == t.tenant.id)
        ).all()
        assigned = conn.execute(
            select(users.c.upn)
            .join(chat_policy_assignments, chat_policy_assignments.c.user_id == users.c.id)
            .where(users.c.tenant_id == t.tenant.id)
        ).all()
    assert [(b.primary_address, b.user_id, b.inactive) for b in boxes] == [
        (f"user0000004@{t.name}", None, True)
    ]
    assert [s.owner_id for s in site_owners] == [None]
    # #4's Legal assignment went with them; #5 (Support) keeps theirs
    assert [a.upn for a in assigned] == [f"user0000005@{t.name}"]
    # the inactive mailbox is still there, and held
    kept = ok(
        admin.run("mail", "Get-Mailbox", {"identity": f"user0000004@{t.name}", "inactive": True})
    )["items"]
    assert len(kept) == 1 and kept[0]["litigationHold"] is True and kept[0]["userId"] is None
