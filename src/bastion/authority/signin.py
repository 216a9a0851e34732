"""Sign-in steps, independent of how they are asked (pages, or the terminal's challenge endpoint).

Each check raises :class:`~bastion.core.errors.SignInFailed` with a message a person can act on,
and records what happened in the audit log. Failures are throttled per account (by the name
typed), per authenticator and per source address (:mod:`bastion.authority.throttle`, A3):
the throttle is asked first, in the transaction of the cheap checks, and a blocked attempt
is refused with :class:`Throttled` before any Argon2id work. The transaction of a failure is
committed (``keep_changes``) so that a refusal still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, update

from bastion.audit import events
from bastion.authority import factor_store, notifications, passwords, throttle
from bastion.authority.factors import totp
from bastion.authority.parts import Authority
from bastion.authority.sign_in_sessions import ACR_TWO_FACTORS
from bastion.core.errors import SignInFailed
from bastion.directory.role_groups import holds_any_role
from bastion.directory.tenants import Tenant
from bastion.directory.users import User, find_user
from bastion.store.schema import users

WRONG_CREDENTIALS = "The user name or password is incorrect."
#: the same answer for every name, known or not, while its counter or the address is blocked
THROTTLED = "Too many failed sign-ins for this account or from this address."
_FACTOR_THROTTLED = {
    throttle.OTP: "Too many wrong authenticator codes.",
    throttle.RECOVERY_CODE: "Too many wrong recovery codes.",
}


class Throttled(SignInFailed):
    """429: a counter is blocked; the attempt was not checked (A3)."""

    status = 429
    oauth_error = "temporarily_unavailable"

    @property
    def retry_after(self) -> int:
        return int(self.extra.get("retry_after", 1))


def _throttled(detail: str, blocked: throttle.Blocked, hint: str | None = None) -> Throttled:
    wait = throttle.human_wait(blocked.retry_after)
    return Throttled(
        detail,
        hint=f"Try again in {wait}." + (f" {hint}" if hint else ""),
        keep_changes=True,
        reason="throttled",
        retry_after=blocked.retry_after,
    )


@dataclass(frozen=True)
class Attempt:
    """Who is trying, as far as the cheap checks tell: the counters a failure adds to."""

    tenant: Tenant
    source: str
    #: the browser or client has signed this user in before: the address is not counted
    known: bool = False
    client_id: str | None = None
    flow: str | None = None

    def source_keys(self) -> list[throttle.Key]:
        return [] if self.known else [throttle.source_key(self.tenant.id, self.source)]


def check_password_throttle(conn: Connection, attempt: Attempt, *, upn: str, now: float) -> None:
    """Before any Argon2id work: refuse while the name or the address is blocked."""
    keys = [throttle.password_key(attempt.tenant.id, upn), *attempt.source_keys()]
    blocked = throttle.check(
        conn, keys, now, actor_name=upn[:320], client_id=attempt.client_id, flow=attempt.flow
    )
    if blocked is not None:
        raise _throttled(THROTTLED, blocked)


def check_factor_throttle(
    conn: Connection, attempt: Attempt, user: User, *, kind: str, now: float
) -> None:
    """Before a second factor is checked (and before a recovery code's Argon2id work)."""
    keys = [throttle.factor_key(attempt.tenant.id, user.id, kind), *attempt.source_keys()]
    blocked = throttle.check(
        conn,
        keys,
        now,
        actor_id=user.id,
        actor_name=user.upn,
        client_id=attempt.client_id,
        flow=attempt.flow,
    )
    if blocked is not None:
        other = "Or use a recovery code." if kind == throttle.OTP else None
        raise _throttled(_FACTOR_THROTTLED[kind], blocked, other)


def factor_open(conn: Connection, tenant: Tenant, user: User, kind: str, now: float) -> bool:
    """Whether the factor's own counter lets it be tried now."""
    key = throttle.factor_key(tenant.id, user.id, kind)
    return throttle.state(conn, key, now).wait(now) == 0


@dataclass(frozen=True)
class Failures:
    """How one check refuses: each failure is audited as ``sign_in.<kind>`` and raised as
    :class:`SignInFailed`, committed (``keep_changes``) so that it counts; a wrong
    credential first adds to its own counter and the address's (A3)."""

    auth: Authority
    conn: Connection
    attempt: Attempt
    now: float
    user: User | None = None
    #: the name typed, for the audit record when no user has it
    name: str | None = None

    def _actor(self) -> dict[str, Any]:
        user = self.user
        return {
            "actor_id": user.id if user else None,
            "actor_name": user.upn if user else self.name,
        }

    def count(self, key: throttle.Key) -> throttle.State:
        """One failure against the credential's counter and the address's."""
        for source in self.attempt.source_keys():
            throttle.fail(self.conn, self.auth.settings, source, self.now, **self._actor())
        return throttle.fail(self.conn, self.auth.settings, key, self.now, **self._actor())

    def refuse(self, kind: str, message: str, hint: str | None = None) -> SignInFailed:
        """The failure to raise, audited."""
        events.record(
            self.conn,
            tenant_id=self.attempt.tenant.id,
            type=f"sign_in.{kind}",
            outcome="failure",
            now=self.now,
            client_id=self.attempt.client_id,
            **self._actor(),
            **_flow(self.attempt.flow),
        )
        return SignInFailed(message, hint=hint, keep_changes=True, reason=kind)

    def wrong_factor(
        self, key: throttle.Key, kind: str, message: str, *, then: str
    ) -> SignInFailed:
        """A wrong second factor: counted, and the hint says how many tries are left."""
        state = self.count(key)
        return self.refuse(kind, message, _factor_hint(self.auth, key, state, self.now, then=then))


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

    An unknown user and a user without a password cost the same time as a real one; a
    blocked one never gets here (:func:`check_password_throttle` came first).
    """
    if user is None or user.password_hash is None:
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
    attempt: Attempt,
    *,
    upn: str,
    verdict: PasswordVerdict,
    now: float,
) -> User:
    """Record the first factor's verdict; every failure gets the same message and counts
    the same, whether the name exists or not."""
    tenant = attempt.tenant
    user = find_user(conn, tenant.id, upn) if upn.strip() else None
    fail = Failures(auth, conn, attempt, now, user=user, name=upn[:320])
    if user is None or user.password_hash is None or not verdict.matched:
        fail.count(throttle.password_key(tenant.id, upn))
        raise fail.refuse("password_failure", WRONG_CREDENTIALS)
    if not user.enabled:
        raise fail.refuse(
            "disabled", "This account is disabled.", "Ask an administrator to enable it."
        )
    throttle.reset(conn, throttle.password_key(tenant.id, upn))
    values: dict[str, object] = {}
    if verdict.fails_rules != user.password_fails_rules:
        values["password_fails_rules"] = verdict.fails_rules
    if verdict.upgraded_hash:
        values["password_hash"] = verdict.upgraded_hash
    if values:
        conn.execute(update(users).where(users.c.id == user.id).values(**values))
    return user


def needs_second_factor(conn: Connection, user: User) -> bool:
    """Whether a sign-in of ``user`` takes a second factor (and so, with none registered,
    registering one first). A8 (docs/decisions/0018): every role is an admin role, and a
    user who holds one needs two factors whatever their per-user MFA state says. A10: an
    enrolled factor is always asked for, so "disabled" plus a password reset never
    bypasses it; an administrator who means to drop the factor resets the methods."""
    return (
        user.mfa_state != "disabled"
        or holds_any_role(conn, user.id)
        or factor_store.has_factor(conn, user.id)
    )


def required_acr_values(conn: Connection, user_id: str, asked: Sequence[str]) -> tuple[str, ...]:
    """The ``acr_values`` an existing sign-in of ``user_id`` must meet to be used again:
    those asked, and two factors for a role holder (A8), whose role may have been granted
    after a password-only sign-in."""
    if ACR_TWO_FACTORS in asked or not holds_any_role(conn, user_id):
        return tuple(asked)
    return (*asked, ACR_TWO_FACTORS)


def _factor_hint(
    auth: Authority, key: throttle.Key, state: throttle.State, now: float, *, then: str
) -> str:
    """After a wrong second factor (the password was right, so the account is not a
    secret any more): how many tries are left, or how long to wait, and what to do."""
    left = throttle.tries_left(auth.settings, key, state)
    wait = state.wait(now)
    if wait:
        return f"No tries are left for now. Try again in {throttle.human_wait(wait)}: {then}."
    tries = "1 try is" if left == 1 else f"{left} tries are"
    return f"{tries} left before a pause. {then[0].upper()}{then[1:]}."


def check_totp(
    auth: Authority,
    conn: Connection,
    attempt: Attempt,
    user: User,
    *,
    code: str,
    now: float,
) -> None:
    """The second factor: a TOTP code, each time step accepted at most once (A4)."""
    tenant = attempt.tenant
    factor = factor_store.find_totp(conn, auth.keyring, user.id)
    if factor is None:
        raise SignInFailed("No authenticator app is registered for this account.")
    check_factor_throttle(conn, attempt, user, kind=throttle.OTP, now=now)
    key = throttle.factor_key(tenant.id, user.id, throttle.OTP)
    step = totp.matching_step(factor.secret, code, now)
    fail = Failures(auth, conn, attempt, now, user=user)
    if step is None:
        raise fail.wrong_factor(
            key,
            "mfa_failure",
            "That code is not correct.",
            then="enter the 6-digit code your authenticator app shows now, or use one "
            "of your recovery codes",
        )
    if not factor_store.claim_step(conn, factor.id, step):
        hint = "Wait for your authenticator app to show the next code."
        raise fail.refuse("otp_replay", "That code was already used.", hint)
    throttle.reset(conn, key)


def check_recovery_code(
    auth: Authority,
    conn: Connection,
    attempt: Attempt,
    user: User,
    *,
    candidate: factor_store.RecoveryCandidate,
    matched: bool,
    now: float,
) -> None:
    """Record a recovery code's verdict (``factor_store.check_recovery_hash``, done after
    :func:`check_factor_throttle` let it through)."""
    tenant = attempt.tenant
    key = throttle.factor_key(tenant.id, user.id, throttle.RECOVERY_CODE)
    if not (
        matched
        and candidate.id is not None
        and factor_store.mark_recovery_code_used(conn, candidate.id, now)
    ):
        raise Failures(auth, conn, attempt, now, user=user).wrong_factor(
            key,
            "recovery_failure",
            "That recovery code is not valid or was already used.",
            then="each recovery code works once; check it, or use another",
        )
    throttle.reset(conn, key)
    # A6: every use notifies the user; the notification record is the audit event.
    notifications.notify(conn, tenant.id, user, "recovery_code_used", now)


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
