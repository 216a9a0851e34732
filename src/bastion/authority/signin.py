"""Sign-in steps, independent of how they are asked (pages, or the terminal later).

Each check raises :class:`~bastion.errors.SignInFailed` with a message a person can act on,
and records what happened in the audit log. Failure counters are per account and per
authenticator, counted across every session, client and address (A3); the transaction of a
failure is committed (``keep_changes``) so that a refusal still counts.
"""

from __future__ import annotations

from sqlalchemy import Connection, update

from bastion.audit import events
from bastion.authority import factor_store
from bastion.authority.context import Authority
from bastion.authority.factors import totp
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
    )
    return SignInFailed(message, hint=hint, keep_changes=True, reason=kind)


def check_password(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    *,
    upn: str,
    password: str,
    now: float,
    client_id: str | None = None,
) -> User:
    """The first factor. An unknown user costs the same time and gets the same message."""
    limit = auth.settings.attempt_limit
    user = find_user(conn, tenant.id, upn) if upn.strip() else None
    if user is None or user.password_hash is None:
        auth.hasher.verify_dummy(password)
        raise _fail(
            conn,
            tenant,
            kind="password_failure",
            now=now,
            message=WRONG_CREDENTIALS,
            name=upn[:320],
            client_id=client_id,
        )
    if user.password_failures >= limit:
        auth.hasher.verify_dummy(password)
        raise _fail(
            conn,
            tenant,
            kind="locked",
            now=now,
            message=LOCKED,
            user=user,
            hint=LOCKED_HINT,
            client_id=client_id,
        )
    if not auth.hasher.verify(user.password_hash, password):
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
        )
    values: dict[str, object] = {"password_failures": 0}
    if auth.hasher.needs_rehash(user.password_hash):
        values["password_hash"] = auth.hasher.hash(password)
    conn.execute(update(users).where(users.c.id == user.id).values(**values))
    return user


def needs_second_factor(user: User) -> bool:
    return user.mfa_state != "disabled"


def check_totp(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    user: User,
    *,
    code: str,
    now: float,
    client_id: str | None = None,
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
            message="That code was already used.",
            hint="Wait for your authenticator app to show the next code.",
        )


def check_recovery_code(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    user: User,
    *,
    code: str,
    now: float,
    client_id: str | None = None,
) -> None:
    if user.recovery_failures >= auth.settings.attempt_limit:
        raise _fail(
            conn,
            tenant,
            kind="locked",
            now=now,
            user=user,
            client_id=client_id,
            message="Recovery codes are locked after too many wrong entries.",
            hint=LOCKED_HINT,
        )
    if not factor_store.use_recovery_code(conn, auth.hasher, user_id=user.id, code=code, now=now):
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
    )
