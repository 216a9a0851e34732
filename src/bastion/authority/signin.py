"""Sign-in steps, independent of how they are asked (pages, or the terminal's challenge endpoint).

Each check raises :class:`~bastion.errors.SignInFailed` with a message a person can act on,
and records what happened in the audit log. Failure counters are per account and per
authenticator, counted across every session, client and address (A3); the transaction of a
failure is committed (``keep_changes``) so that a refusal still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, update

from bastion.audit import events
from bastion.authority import factor_store, passwords
from bastion.authority.context import Authority
from bastion.authority.factors import totp
from bastion.authority.sessions import ACR_TWO_FACTORS
from bastion.directory.role_groups import holds_any_role
from bastion.directory.tenants import Tenant
from bastion.directory.users import User, find_user
from bastion.errors import SignInFailed
from bastion.store.schema import users

WRONG_CREDENTIALS = "The user name or password is incorrect."
LOCKED = "This account is locked after too many failed sign-ins."
LOCKED_HINT = "Ask an administrator to unlock it (bastion user unlock)."


def _fail(
    conn: Connection,
    tenant: Tenant,
    *,
    kind: str,
    now: float,
    message: str,
    user: User | None = None,
    name: str | None = None,
    hint: str | None = None,
    client_id: str | None = None,
    flow: str | None = None,
) -> SignInFailed:
    events.record(
        conn,
        tenant_id=tenant.id,
        type=f"sign_in.{kind}",
        outcome="failure",
        now=now,
        actor_id=user.id if user else None,
        actor_name=user.upn if user else name,
        client_id=client_id,
        **_flow(flow),
    )
    return SignInFailed(message, hint=hint, keep_changes=True, reason=kind)


def _flow(flow: str | None) -> dict[str, Any]:
    """The audit data naming how the sign-in was asked, when not through the pages."""
    return {"flow": flow} if flow else {}


@dataclass(frozen=True)
class PasswordVerdict:
    """The outcome of the Argon2id work, computed before the transaction that records it."""

    matched: bool
    upgraded_hash: str | None = None
    #: on a match: whether the password fails today's rules for new passwords (A1), so the
    #: user can be listed and asked to change it; the password itself is never kept
    fails_rules: bool = False


def verify_password(auth: Authority, user: User | None, password: str) -> PasswordVerdict:
    """Argon2id, outside any transaction: ~20 ms that must hold no database lock.

    An unknown user, a user without a password and a locked one cost the same time.
    """
    if (
        user is None
        or user.password_hash is None
        or user.password_failures >= auth.settings.attempt_limit
    ):
        auth.hasher.verify_dummy(password)
        return PasswordVerdict(False)
    match = auth.hasher.check(user.password_hash, password)
    if not match.matched:
        return PasswordVerdict(False)
    context = passwords.context_words(user.upn, user.display_name)
    return PasswordVerdict(
        True,
        auth.hasher.hash(password) if match.rehash else None,
        fails_rules=passwords.password_problem(password, context) is not None,
    )


def check_password(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    *,
    upn: str,
    verdict: PasswordVerdict,
    now: float,
    client_id: str | None = None,
    flow: str | None = None,
) -> User:
    """Record the first factor's verdict; every failure gets the same message."""
    limit = auth.settings.attempt_limit
    user = find_user(conn, tenant.id, upn) if upn.strip() else None
    if user is None or user.password_hash is None:
        raise _fail(
            conn,
            tenant,
            kind="password_failure",
            now=now,
            message=WRONG_CREDENTIALS,
            name=upn[:320],
            client_id=client_id,
            flow=flow,
        )
    if user.password_failures >= limit:
        raise _fail(
            conn,
            tenant,
            kind="locked",
            now=now,
            message=LOCKED,
            user=user,
            hint=LOCKED_HINT,
            client_id=client_id,
            flow=flow,
        )
    if not verdict.matched:
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(password_failures=users.c.password_failures + 1)
        )
        raise _fail(
            conn,
            tenant,
            kind="password_failure",
            now=now,
            message=WRONG_CREDENTIALS,
            user=user,
            client_id=client_id,
            flow=flow,
        )
    if not user.enabled:
        raise _fail(
            conn,
            tenant,
            kind="disabled",
            now=now,
            message="This account is disabled.",
            user=user,
            hint="Ask an administrator to enable it.",
            client_id=client_id,
            flow=flow,
        )
    values: dict[str, object] = {"password_failures": 0}
    if verdict.fails_rules != user.password_fails_rules:
        values["password_fails_rules"] = verdict.fails_rules
    if verdict.upgraded_hash:
        values["password_hash"] = verdict.upgraded_hash
    conn.execute(update(users).where(users.c.id == user.id).values(**values))
    return user


def needs_second_factor(conn: Connection, user: User) -> bool:
    """Whether a sign-in of ``user`` takes a second factor (and so, with none registered,
    registering one first). A8 (docs/decisions/0018): every role is an admin role, and a
    user who holds one needs two factors whatever their per-user MFA state says."""
    return user.mfa_state != "disabled" or holds_any_role(conn, user.id)


def required_acr_values(conn: Connection, user_id: str, asked: Sequence[str]) -> tuple[str, ...]:
    """The ``acr_values`` an existing sign-in of ``user_id`` must meet to be used again:
    those asked, and two factors for a role holder (A8), whose role may have been granted
    after a password-only sign-in."""
    if ACR_TWO_FACTORS in asked or not holds_any_role(conn, user_id):
        return tuple(asked)
    return (*asked, ACR_TWO_FACTORS)


def check_totp(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    user: User,
    *,
    code: str,
    now: float,
    client_id: str | None = None,
    flow: str | None = None,
) -> None:
    """The second factor: a TOTP code, each time step accepted at most once (A4)."""
    factor = factor_store.find_totp(conn, auth.keyring, user.id)
    if factor is None:
        raise SignInFailed("No authenticator app is registered for this account.")
    if factor.failures >= auth.settings.attempt_limit:
        raise _fail(
            conn,
            tenant,
            kind="locked",
            now=now,
            user=user,
            client_id=client_id,
            flow=flow,
            message="The authenticator code is locked after too many wrong codes.",
            hint="Use a recovery code, or ask an administrator to reset your MFA.",
        )
    step = totp.matching_step(factor.secret, code, now)
    if step is None:
        factor_store.add_failure(conn, factor.id)
        raise _fail(
            conn,
            tenant,
            kind="mfa_failure",
            now=now,
            user=user,
            client_id=client_id,
            flow=flow,
            message="That code is not correct.",
            hint="Enter the 6-digit code your authenticator app shows now.",
        )
    if not factor_store.claim_step(conn, factor.id, step):
        raise _fail(
            conn,
            tenant,
            kind="otp_replay",
            now=now,
            user=user,
            client_id=client_id,
            flow=flow,
            message="That code was already used.",
            hint="Wait for your authenticator app to show the next code.",
        )


def check_recovery_code(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    user: User,
    *,
    candidate: factor_store.RecoveryCandidate,
    matched: bool,
    now: float,
    client_id: str | None = None,
    flow: str | None = None,
) -> None:
    """Record a recovery code's verdict (``factor_store.check_recovery_hash``, done before)."""
    if user.recovery_failures >= auth.settings.attempt_limit:
        raise _fail(
            conn,
            tenant,
            kind="locked",
            now=now,
            user=user,
            client_id=client_id,
            flow=flow,
            message="Recovery codes are locked after too many wrong entries.",
            hint=LOCKED_HINT,
        )
    if not (
        matched
        and candidate.id is not None
        and factor_store.mark_recovery_code_used(conn, candidate.id, now)
    ):
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(recovery_failures=users.c.recovery_failures + 1)
        )
        raise _fail(
            conn,
            tenant,
            kind="recovery_failure",
            now=now,
            user=user,
            client_id=client_id,
            flow=flow,
            message="That recovery code is not valid or was already used.",
        )
    conn.execute(update(users).where(users.c.id == user.id).values(recovery_failures=0))
    # A6: every use notifies the user; the notification record is the audit event.
    events.record(
        conn,
        tenant_id=tenant.id,
        type="notify.recovery_code_used",
        outcome="success",
        now=now,
        actor_id=user.id,
        actor_name=user.upn,
    )


def record_success(
    conn: Connection,
    tenant: Tenant,
    user: User,
    *,
    amr: list[str],
    session_id: str,
    now: float,
    client_id: str | None = None,
    flow: str | None = None,
) -> None:
    events.record(
        conn,
        tenant_id=tenant.id,
        type="sign_in.success",
        outcome="success",
        now=now,
        actor_id=user.id,
        actor_name=user.upn,
        client_id=client_id,
        amr=amr,
        session_id=session_id,
        **_flow(flow),
    )
