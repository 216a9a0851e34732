"""Privilege tiers: who may change whose account (docs/decisions/0017).

The matrix: every built-in role as the caller, every built-in role (and no role) as the
target, every command that changes a user's credentials or account. A cell is allowed when
the caller's role may run the command and the caller holds every role the target holds (or
is a Global Administrator); every other cell is a 403, audited, that changes nothing. The
expectations are written out here by hand, as in test_role_matrix.py. Targets are made in
bulk in the database, one per cell (a removal or a rename must not disturb the next cell).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from bastion.authority import factor_store
from bastion.authority.factors import totp
from bastion.directory import groups, role_groups, users
from bastion.directory.role_groups import ScopeFilter
from bastion.server.bootstrap import ROLE_NAMES
from bastion.store.schema import audit_events, factors
from bastion.store.schema import users as users_table
from tests.support.flows import Org, Person, device_sign_in
from tests.support.plane import Tokens

GA = "Global Administrator"
ROLES = (
    GA,
    "Mail Recipients Administrator",
    "Helpdesk",
    "Sites Administrator",
    "Chat Administrator",
    "Audit Reader",
    "Read-Only Reporting",
)
#: what each change sends, besides the target's identity
CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "password": ("Set-User", {"password": "Nw-" + secrets.token_urlsafe(16)}),
    "rename": ("Set-User", {"user_principal_name": "renamed"}),  # made unique per cell
    "display name": ("Set-User", {"display_name": "Someone Else"}),
    "department": ("Set-User", {"department": "Elsewhere"}),
    "mfa state": ("Set-UserMfa", {"state": "enabled"}),
    "mfa reset": ("Set-UserMfa", {"state": "enforced", "reset_methods": True}),
    "disable": ("Disable-User", {}),
    "enable": ("Enable-User", {}),
    "remove": ("Remove-User", {}),
}
#: which of the changes each role's commands allow at all (test_role_matrix.py's roles)
ROLE_ALLOWS: dict[str, set[str]] = {
    GA: set(CHANGES),
    "Helpdesk": {"password", "mfa state", "mfa reset", "disable", "enable"},
    "Mail Recipients Administrator": set(),
    "Sites Administrator": set(),
    "Chat Administrator": set(),
    "Audit Reader": set(),
    "Read-Only Reporting": set(),
}
TARGETS: tuple[str | None, ...] = (None, *ROLES)


def expected(caller: str, target: str | None, change: str) -> int:
    outranks = target is None or caller in (GA, target)
    return 200 if change in ROLE_ALLOWS[caller] and outranks else 403


def caller(t: Org, name: str, roles: list[str]) -> Tokens:
    """A user holding ``roles`` with an authenticator, signed in (tokens of a fresh sign-in:
    sensitive commands pass step-up)."""
    auth = t.server.authority
    password = "pw-" + secrets.token_urlsafe(12)
    secret = totp.generate_secret()
    with auth.store.begin() as conn:
        user = users.create_user(
            conn,
            tenant_id=t.tenant.id,
            upn=f"{name}@{t.name}",
            display_name=name,
            password_hash=auth.hasher.hash(password),
            mfa_state="enforced",
            now=t.server.now(),
        )
        for role in roles:
            role_groups.add_to_built_in(
                conn, t.tenant.id, user.id, role, t.server.now(), ROLE_NAMES
            )
        _add_factor(t, conn, user.id, secret)
    return Tokens(t, Person(f"{name}@{t.name}", password, secret))


def _add_factor(t: Org, conn: Any, user_id: str, secret: bytes | None = None) -> None:
    factor_store.add_totp(
        conn,
        t.server.authority.keyring,
        tenant_id=t.tenant.id,
        user_id=user_id,
        secret=secret or totp.generate_secret(),
        accepted_step=None,
        now=t.server.now(),
    )


@dataclass(frozen=True)
class Cell:
    target: str | None
    change: str
    user_id: str
    upn: str


def make_targets(t: Org, prefix: str) -> list[Cell]:
    """One user per (target role, change), each with a factor; the ``enable`` ones start
    disabled."""
    cells = []
    with t.server.authority.store.begin() as conn:
        for n, target in enumerate(TARGETS):
            for m, change in enumerate(CHANGES):
                user = users.create_user(
                    conn,
                    tenant_id=t.tenant.id,
                    upn=f"{prefix}-{n}-{m}@{t.name}",
                    display_name="Target",
                    password_hash=None,
                    mfa_state="enforced",
                    now=t.server.now(),
                    enabled=change != "enable",
                )
                if target is not None:
                    role_groups.add_to_built_in(
                        conn, t.tenant.id, user.id, target, t.server.now(), ROLE_NAMES
                    )
                _add_factor(t, conn, user.id)
                cells.append(Cell(target, change, user.id, user.upn))
    return cells


def _params(cell: Cell) -> tuple[str, dict[str, Any]]:
    name, extra = CHANGES[cell.change]
    params = {"identity": cell.upn, **extra}
    if cell.change == "rename":
        params["user_principal_name"] = f"renamed-{cell.upn}"
    return name, params


def _changed(row: Any, factor_count: int, cell: Cell) -> bool:
    """Whether ``cell``'s change took effect on its target (``row`` None: removed)."""
    if cell.change == "remove":
        return row is None
    assert row is not None
    return {
        "password": row.password_hash is not None,
        "rename": row.upn != cell.upn,
        "display name": row.display_name != "Target",
        "department": row.department == "Elsewhere",
        "mfa state": row.mfa_state == "enabled",
        "mfa reset": factor_count == 0,
        "disable": not row.enabled,
        "enable": row.enabled,
    }[cell.change]


@pytest.mark.parametrize("role", ROLES)
def test_privilege_matrix(t: Org, role: str) -> None:
    tokens = caller(t, "caller", [role])
    cells = make_targets(t, "target")
    wrong: list[str] = []
    denied: set[tuple[str, str]] = set()
    for cell in cells:
        name, params = _params(cell)
        answer = tokens.run("directory", name, params)
        want = expected(role, cell.target, cell.change)
        if answer.status_code != want:
            wrong.append(f"{cell.change} on {cell.target}: {answer.status_code} {answer.text}")
            continue
        if want == 403:
            denied.add((name, cell.upn))
            # a refusal by tier says so; one by role names the command
            tier = cell.change in ROLE_ALLOWS[role]
            body = answer.json()
            if tier != (body.get("reason") == "privilege_tier"):
                wrong.append(f"{cell.change} on {cell.target}: refused for {body}")
    assert not wrong, f"{role}: {len(wrong)} of {len(cells)} cells wrong: {wrong[:5]}"
    auth = t.server.authority
    with auth.store.begin() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                select(users_table).where(users_table.c.id.in_([c.user_id for c in cells]))
            )
        }
        kept = dict(
            conn.execute(
                select(factors.c.user_id, func.count())
                .where(factors.c.user_id.in_([c.user_id for c in cells]))
                .group_by(factors.c.user_id)
            ).all()
        )
        records = conn.execute(
            select(audit_events.c.data).where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.actor_name == f"caller@{t.name}",
                audit_events.c.outcome == "denied",
            )
        ).scalars()
        audited = {(r["command"], r["parameters"]["identity"]) for r in records}
    # every change took effect exactly where it was allowed; a refusal changed nothing
    for cell in cells:
        changed = _changed(rows.get(cell.user_id), kept.get(cell.user_id, 0), cell)
        if changed != (expected(role, cell.target, cell.change) == 200):
            wrong.append(f"{cell.change} on {cell.target}: changed={changed}")
    assert not wrong, wrong
    # each 403 left exactly one audit record of the denial
    assert audited == denied
    assert len(denied) == sum(
        expected(role, c.target, c.change) == 403 for c in cells
    )  # the matrix's 403s: none missed, none merged


def test_helpdesk_cannot_take_over_the_global_administrator(t: Org) -> None:
    helpdesk = caller(t, "helpdesk", ["Helpdesk"])
    admin = t.admin.username
    password = "Nw-" + secrets.token_urlsafe(16)
    for name, params in (
        ("Set-User", {"identity": admin, "password": password}),
        ("Set-UserMfa", {"identity": admin, "state": "disabled", "reset_methods": True}),
        ("Disable-User", {"identity": admin}),
    ):
        refused = helpdesk.run("directory", name, params)
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"] == "privilege_tier"
        assert "Global Administrator" in refused.json()["detail"]
    # the administrator's own password and authenticator still sign them in
    assert device_sign_in(t, t.admin)["access_token"]


def _member_of(t: Org, conn: Any, user_id: str, group_name: str) -> None:
    group = role_groups.require_role_group(conn, t.tenant.id, group_name)
    role_groups.add_member(conn, group, user_id, "user")


def test_roles_held_through_a_group_or_a_custom_role_group_count(t: Org) -> None:
    auth, now = t.server.authority, t.server.now()
    with auth.store.begin() as conn:
        admins = groups.create_group(
            conn, tenant_id=t.tenant.id, name="Admins", description="", now=now
        )
        role_groups.add_member(
            conn, role_groups.require_role_group(conn, t.tenant.id, GA), admins.id, "group"
        )
        role_groups.create_role_group(
            conn,
            tenant_id=t.tenant.id,
            name="Desk and audit",
            description="",
            roles=["Helpdesk", "Audit Reader"],
            scope=None,
            now=now,
            known_roles=ROLE_NAMES,
        )
        made = {}
        for name in ("via-group", "custom", "plain-helpdesk"):
            made[name] = users.create_user(
                conn,
                tenant_id=t.tenant.id,
                upn=f"{name}@{t.name}",
                display_name=name,
                password_hash=None,
                mfa_state="enforced",
                now=now,
            )
        groups.add_member(conn, admins, made["via-group"].id)
        _member_of(t, conn, made["custom"].id, "Desk and audit")
        role_groups.add_to_built_in(
            conn, t.tenant.id, made["plain-helpdesk"].id, "Helpdesk", now, ROLE_NAMES
        )
    helpdesk = caller(t, "helpdesk", ["Helpdesk"])
    both = caller(t, "both", ["Helpdesk", "Audit Reader"])

    def reset(tokens: Tokens, upn: str) -> int:
        params = {"identity": upn, "password": "Nw-" + secrets.token_urlsafe(16)}
        return tokens.run("directory", "Set-User", params).status_code

    assert reset(helpdesk, f"via-group@{t.name}") == 403  # Global Administrator via a group
    assert reset(both, f"via-group@{t.name}") == 403
    assert reset(helpdesk, f"custom@{t.name}") == 403  # lacks Audit Reader
    assert reset(both, f"custom@{t.name}") == 200  # holds every role the target holds
    assert reset(both, f"plain-helpdesk@{t.name}") == 200


def test_scoped_role_groups_follow_the_rule_inside_their_scope(t: Org) -> None:
    auth, now = t.server.authority, t.server.now()
    sales, marketing = ScopeFilter(department="Sales"), ScopeFilter(department="Marketing")
    with auth.store.begin() as conn:
        for name, scope in (
            ("Sales helpdesk", sales),
            ("Sales helpdesk too", sales),
            ("Marketing helpdesk", marketing),
        ):
            role_groups.create_role_group(
                conn,
                tenant_id=t.tenant.id,
                name=name,
                description="",
                roles=["Helpdesk"],
                scope=scope,
                now=now,
                known_roles=ROLE_NAMES,
            )
        me = users.create_user(
            conn,
            tenant_id=t.tenant.id,
            upn=f"scoped@{t.name}",
            display_name="Scoped",
            password_hash=auth.hasher.hash("pw-scoped-helpdesk"),
            mfa_state="enforced",
            now=now,
        )
        secret = totp.generate_secret()
        _add_factor(t, conn, me.id, secret)
        _member_of(t, conn, me.id, "Sales helpdesk")
        targets = {
            # name: (department, role group it is in, expected answer)
            "plain": ("Sales", None, 200),
            "unscoped-helpdesk": ("Sales", "Helpdesk", 403),
            "same-group": ("Sales", "Sales helpdesk", 200),
            "same-scope": ("Sales", "Sales helpdesk too", 200),
            "other-scope": ("Sales", "Marketing helpdesk", 403),
            "out-of-scope": ("Marketing", None, 403),
        }
        for name, (department, group, _) in targets.items():
            user = users.create_user(
                conn,
                tenant_id=t.tenant.id,
                upn=f"{name}@{t.name}",
                display_name=name,
                password_hash=None,
                mfa_state="enforced",
                now=now,
                department=department,
            )
            if group is not None:
                _member_of(t, conn, user.id, group)
    scoped = Tokens(t, Person(f"scoped@{t.name}", "pw-scoped-helpdesk", secret))
    for name, (_, _, want) in targets.items():
        for command, params in (
            ("Set-User", {"password": "Nw-" + secrets.token_urlsafe(16)}),
            ("Set-UserMfa", {"state": "enforced", "reset_methods": True}),
            ("Disable-User", {}),
        ):
            answer = scoped.run("directory", command, {"identity": f"{name}@{t.name}", **params})
            assert answer.status_code == want, (name, command, answer.text)
            if want == 403:
                reason = "out_of_scope" if name == "out-of-scope" else "privilege_tier"
                assert answer.json()["reason"] == reason
