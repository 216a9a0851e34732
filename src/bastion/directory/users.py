"""Users: who they are, whether they may sign in, and what MFA asks of them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.core.text import has_control
from bastion.directory import names, role_groups
from bastion.store.schema import factors, recovery_codes, tenants, users

#: ``disabled``: a password is enough. ``enabled``: the user must register a second factor
#: at the next sign-in, after which the state becomes ``enforced``. ``enforced``: every
#: sign-in needs the second factor.
MFA_STATES = ("disabled", "enabled", "enforced")


@dataclass(frozen=True)
class User:
    id: str
    tenant_id: str
    upn: str
    display_name: str
    enabled: bool
    mfa_state: str
    password_hash: str | None
    password_failures: int
    recovery_failures: int
    department: str = ""
    #: the password failed today's rules at the last sign-in (a password from before them)
    password_fails_rules: bool = False

    def public(self) -> dict[str, Any]:
        """The fields any reader may see: never a hash or a counter of secrets."""
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.display_name,
            "enabled": self.enabled,
            "mfaState": self.mfa_state,
        }


def _to_user(row: Any) -> User:
    return User(
        id=row.id,
        tenant_id=row.tenant_id,
        upn=row.upn,
        display_name=row.display_name,
        enabled=row.enabled,
        mfa_state=row.mfa_state,
        password_hash=row.password_hash,
        password_failures=row.password_failures,
        recovery_failures=row.recovery_failures,
        department=row.department,
        password_fails_rules=row.password_fails_rules,
    )


def tenant_name(conn: Connection, tenant_id: str) -> str:
    return str(conn.execute(select(tenants.c.name).where(tenants.c.id == tenant_id)).scalar_one())


def normalize_upn(conn: Connection, tenant_id: str, upn: str) -> str:
    """The canonical form of a new user principal name in the tenant (``names``), or a 400
    saying why it cannot be one."""
    return names.check_upn(upn, tenant_name(conn, tenant_id))


def check_mfa_state(state: str) -> None:
    if state not in MFA_STATES:
        raise UsageError(
            f"'{state}' is not an MFA state.", hint=f"Use one of: {', '.join(MFA_STATES)}."
        )


def create_user(
    conn: Connection,
    *,
    tenant_id: str,
    upn: str,
    display_name: str | None,
    password_hash: str | None,
    mfa_state: str,
    now: float,
    enabled: bool = True,
    department: str = "",
) -> User:
    upn = normalize_upn(conn, tenant_id, upn)
    shown = names.check_display_name(display_name) if display_name else upn.split("@")[0]
    department = check_department(department)
    check_mfa_state(mfa_state)
    if find_user(conn, tenant_id, upn) is not None:
        raise Conflict(f"user '{upn}' already exists.")
    user_id = new_id()
    conn.execute(
        insert(users).values(
            id=user_id,
            tenant_id=tenant_id,
            upn=upn,
            display_name=shown,
            enabled=enabled,
            mfa_state=mfa_state,
            password_hash=password_hash,
            password_failures=0,
            recovery_failures=0,
            created_at=now,
            department=department,
        )
    )
    return get_user(conn, tenant_id, user_id)


def check_department(department: str) -> str:
    value = department.strip()
    if len(value) > 128 or has_control(value):
        raise UsageError(
            "a department is visible text of at most 128 characters.", parameter="department"
        )
    return value


def rename(conn: Connection, user: User, upn: str) -> None:
    """Change a user's sign-in name. Nothing else follows names: sessions, roles and
    objects refer to the user's id (R4)."""
    new = normalize_upn(conn, user.tenant_id, upn)
    if new == user.upn:
        return
    if find_user(conn, user.tenant_id, new) is not None:
        raise Conflict(f"user '{new}' already exists.", parameter="user_principal_name")
    conn.execute(update(users).where(users.c.id == user.id).values(upn=new))


def set_department(conn: Connection, user: User, department: str) -> None:
    conn.execute(
        update(users).where(users.c.id == user.id).values(department=check_department(department))
    )


def _by_name(conn: Connection, tenant_id: str, upn: str) -> User | None:
    """The user stored under ``upn`` as typed (lower case: names from before today's rules)
    or under its canonical form (``names.lookup_forms``), the first found."""
    for form in names.lookup_forms(upn):
        row = conn.execute(
            select(users).where(users.c.tenant_id == tenant_id, users.c.upn == form)
        ).first()
        if row:
            return _to_user(row)
    return None


def find_user(conn: Connection, tenant_id: str, upn: str) -> User | None:
    if has_control(upn) or len(upn) > 320:
        return None
    return _by_name(conn, tenant_id, upn)


def get_user(conn: Connection, tenant_id: str, user_id: str) -> User:
    row = conn.execute(
        select(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
    ).first()
    if row is None:
        raise NotFound("user does not exist.")
    return _to_user(row)


def lookup(conn: Connection, tenant_id: str, identity: str) -> User | None:
    """A user of the tenant by id or by user principal name; None when there is none (or
    the identity could not be one: control characters never reach the database)."""
    if has_control(identity) or len(identity) > 320:
        return None
    row = conn.execute(
        select(users).where(users.c.tenant_id == tenant_id, users.c.id == identity)
    ).first()
    return _to_user(row) if row else _by_name(conn, tenant_id, identity)


def require_user(conn: Connection, tenant_id: str, upn: str) -> User:
    user = find_user(conn, tenant_id, upn)
    if user is None:
        raise NotFound(f"user '{upn}' does not exist.", hint="Check the user principal name.")
    return user


def store_password_hash(conn: Connection, user: User, password_hash: str) -> None:
    """Store a new hash, which passed today's rules. Its failure counters are the
    authority's: change a password with ``bastion.authority.credentials.set_password_hash``,
    which starts them again too."""
    conn.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(password_hash=password_hash, password_failures=0, password_fails_rules=False)
    )


def set_enabled(conn: Connection, user: User, enabled: bool) -> None:
    conn.execute(update(users).where(users.c.id == user.id).values(enabled=enabled))


def set_mfa_state(conn: Connection, user: User, state: str, *, reset_factors: bool) -> None:
    check_mfa_state(state)
    conn.execute(update(users).where(users.c.id == user.id).values(mfa_state=state))
    if reset_factors:
        conn.execute(delete(factors).where(factors.c.user_id == user.id))
        conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user.id))
        conn.execute(update(users).where(users.c.id == user.id).values(recovery_failures=0))


def add_role(
    conn: Connection, user: User, role: str, now: float, known_roles: Collection[str]
) -> None:
    """Give a user one of the server's built-in roles (through the built-in role group of
    that name)."""
    role_groups.add_to_built_in(conn, user.tenant_id, user.id, role, now, known_roles)


def count_users(conn: Connection, tenant_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(users).where(users.c.tenant_id == tenant_id)
        ).scalar_one()
    )


@dataclass(frozen=True)
class RuleProblem:
    """A user whose name, display name or password fails today's rules (names shown with
    invisible characters escaped)."""

    user_id: str
    upn: str
    display_name: str
    enabled: bool
    problems: tuple[str, ...]


WEAK_PASSWORD = (
    "password: at the last sign-in it failed the rules for new passwords "
    "(too short, common, breached or made from a name)."
)


def rule_problems(conn: Connection, tenant_id: str, tenant_name: str) -> list[RuleProblem]:
    """Every user of the tenant that today's rules would not accept, in name order: names
    and passwords from before the rules keep working, and this lists them."""
    query = select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.upn, users.c.id)
    found: list[RuleProblem] = []
    for row in conn.execute(query):
        problems = []
        upn = names.upn_problem(row.upn, tenant_name)
        if upn:
            problems.append(f"userPrincipalName: {upn}")
        shown = names.display_name_problem(row.display_name)
        if shown:
            problems.append(f"displayName: {shown}")
        if row.password_fails_rules:
            problems.append(WEAK_PASSWORD)
        if problems:
            found.append(
                RuleProblem(
                    user_id=row.id,
                    upn=names.visible(row.upn),
                    display_name=names.visible(row.display_name),
                    enabled=row.enabled,
                    problems=tuple(problems),
                )
            )
    return found


def set_display_name(conn: Connection, user: User, display_name: str) -> None:
    shown = names.check_display_name(display_name)
    conn.execute(update(users).where(users.c.id == user.id).values(display_name=shown))


def delete_user(conn: Connection, user: User) -> None:
    """Delete the user's row; rows that cascade go with it (sessions, factors, codes, group
    memberships). What happens to everything else they had is ``bastion.services.user_removal``."""
    role_groups.forget_principal(conn, user.id)
    conn.execute(delete(users).where(users.c.id == user.id))
