"""Throttling failed sign-in attempts with blocks that lift by themselves (A3, decision 0019).

Every guessable credential is counted under keys in one table, shared by every process and
every surface that checks it (the sign-in pages, the authorization challenge endpoint, the
device pages and the token endpoint):

- the account, by the name typed (``pwd:``): a name that exists and one that does not are
  counted and answered alike, so the answers never tell which names exist;
- each second factor of a user (``otp:``, ``recovery:``);
- the source address, per tenant (``source:``), against one address trying many accounts.
  A browser or client that has signed this user in before is exempt (``known``), so an
  attacker sharing the owner's address cannot keep the owner out; its failures still count
  against the account.

A key takes :data:`FREE_FAILURES` consecutive failures (:data:`SOURCE_FREE_FAILURES` for an
address) before its first pause of :data:`FIRST_DELAY`; each further failure blocks it for
twice as long as the one before, up to the configured ``lockout_seconds``, and from
``attempt_limit``
consecutive failures on (at most 100, NIST SP 800-63B-4 section 3.2.2) every failure blocks
it for the whole ``lockout_seconds``. While a key is blocked, an attempt is answered 429 with
``Retry-After`` and not checked at all. A success sets the account's (or factor's) counter
back to zero; an address's counter is forgotten after a quiet day, never reset by a success
(an attacker's own account would otherwise reset it between guesses).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bastion.audit import events
from bastion.core.config import Settings
from bastion.core.text import human_duration
from bastion.store.schema import throttles

#: consecutive failures of an account or a factor up to its first pause (that one included)
FREE_FAILURES = 5
#: failures from one address (any account) up to its first pause
SOURCE_FREE_FAILURES = 30
#: the first block, doubled with each further failure
FIRST_DELAY = 30.0
#: an address quiet this long starts again from zero
SOURCE_FORGET_AFTER = 86400.0

#: what a key counts, as audit records and answers name it
PASSWORD = "password"
OTP = "otp"
RECOVERY_CODE = "recovery_code"
SOURCE = "source"


_INSERT_NEW = {
    "postgresql": postgresql.insert(throttles).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(throttles).on_conflict_do_nothing(),
}


@dataclass(frozen=True)
class Key:
    """One counter: its row key, its kind, and the tenant it belongs to."""

    value: str
    kind: str
    tenant_id: str


def password_key(tenant_id: str, name: str) -> Key:
    """The account as typed: names are compared as ``find_user`` compares them; the digest
    keeps an unknown name out of the table and any length within the key's column."""
    digest = hashlib.sha256(name.strip().lower().encode()).hexdigest()
    return Key(f"pwd:{tenant_id}:{digest}", PASSWORD, tenant_id)


def factor_key(tenant_id: str, user_id: str, kind: str) -> Key:
    assert kind in (OTP, RECOVERY_CODE)
    return Key(f"{kind}:{user_id}", kind, tenant_id)


def source_key(tenant_id: str, address: str) -> Key:
    return Key(f"source:{tenant_id}:{address[:100]}", SOURCE, tenant_id)


@dataclass(frozen=True)
class State:
    failures: int
    blocked_until: float

    def wait(self, now: float) -> int:
        """Whole seconds until the key may be tried again (0 when it may now)."""
        return max(0, math.ceil(self.blocked_until - now))


def _free(key: Key) -> int:
    return SOURCE_FREE_FAILURES if key.kind == SOURCE else FREE_FAILURES


def delay_after(settings: Settings, key: Key, failures: int) -> float:
    """How long a key is blocked after its ``failures``-th consecutive failure."""
    if key.kind != SOURCE and failures >= settings.attempt_limit:
        return float(settings.lockout_seconds)
    beyond = failures - _free(key)
    if beyond < 0:
        return 0.0
    return min(FIRST_DELAY * 2.0 ** min(beyond, 30), float(settings.lockout_seconds))


def tries_left(settings: Settings, key: Key, state: State) -> int:
    """Failures the key can take before its next block (the one that blocks included)."""
    free = min(_free(key), settings.attempt_limit)
    return max(0, free - state.failures)


def state(conn: Connection, key: Key, now: float) -> State:
    row = conn.execute(select(throttles).where(throttles.c.key == key.value)).first()
    if row is None or _forgotten(key, row.last_failure_at, now):
        return State(0, 0.0)
    return State(int(row.failures), float(row.blocked_until))


def _forgotten(key: Key, last_failure_at: float, now: float) -> bool:
    return key.kind == SOURCE and now - last_failure_at > SOURCE_FORGET_AFTER


@dataclass(frozen=True)
class Blocked:
    """A refused attempt: which counter blocks it and for how long."""

    kind: str
    retry_after: int


def check(
    conn: Connection,
    keys: list[Key],
    now: float,
    *,
    actor_id: str | None = None,
    actor_name: str | None = None,
    client_id: str | None = None,
    flow: str | None = None,
) -> Blocked | None:
    """The longest block among ``keys``, or None when the attempt may be checked.

    The first refused attempt of each block leaves a ``rate_limit.sign_in`` audit record
    (L1); the rest of the block's refusals are not recorded, so a flood cannot fill the log.
    """
    worst: tuple[Key, int, float] | None = None
    for key in keys:
        row = conn.execute(select(throttles).where(throttles.c.key == key.value)).first()
        if row is None or row.blocked_until <= now or _forgotten(key, row.last_failure_at, now):
            continue
        wait = math.ceil(row.blocked_until - now)
        if worst is None or wait > worst[1]:
            worst = (key, wait, float(row.blocked_until))
        if row.noted_until != row.blocked_until:
            conn.execute(
                update(throttles)
                .where(throttles.c.key == key.value)
                .values(noted_until=row.blocked_until)
            )
            events.record(
                conn,
                tenant_id=key.tenant_id,
                type="rate_limit.sign_in",
                outcome="denied",
                now=now,
                actor_id=actor_id,
                actor_name=actor_name,
                client_id=client_id,
                counter=key.kind,
                retry_after=wait,
                **_flow(flow),
            )
    return Blocked(worst[0].kind, worst[1]) if worst else None


def _flow(flow: str | None) -> dict[str, Any]:
    return {"flow": flow} if flow else {}


def fail(
    conn: Connection,
    settings: Settings,
    key: Key,
    now: float,
    *,
    actor_id: str | None = None,
    actor_name: str | None = None,
) -> State:
    """Count one failure; a failure that starts a block leaves a ``sign_in.lockout`` record."""
    # One row per key, then an increment that holds the row's lock until the commit, so
    # two processes counting at once both count.
    conn.execute(
        _INSERT_NEW[conn.dialect.name].values(
            key=key.value, tenant_id=key.tenant_id, failures=0, last_failure_at=now, blocked_until=0
        )
    )
    conn.execute(
        update(throttles)
        .where(throttles.c.key == key.value)
        .values(failures=throttles.c.failures + 1)
    )
    row = conn.execute(select(throttles).where(throttles.c.key == key.value)).one()
    failures = 1 if _forgotten(key, row.last_failure_at, now) else int(row.failures)
    delay = delay_after(settings, key, failures)
    blocked_until = now + delay if delay else 0.0
    conn.execute(
        update(throttles)
        .where(throttles.c.key == key.value)
        .values(failures=failures, last_failure_at=now, blocked_until=blocked_until)
    )
    if delay:
        events.record(
            conn,
            tenant_id=key.tenant_id,
            type="sign_in.lockout",
            outcome="denied",
            now=now,
            actor_id=actor_id,
            actor_name=actor_name,
            counter=key.kind,
            failures=failures,
            blocked_for=math.ceil(delay),
        )
    return State(failures, blocked_until)


def reset(conn: Connection, *keys: Key) -> None:
    """A success (or an operator's unlock): the counters start again from zero."""
    conn.execute(delete(throttles).where(throttles.c.key.in_([k.value for k in keys])))


def reset_user(conn: Connection, tenant_id: str, user_id: str, upn: str) -> None:
    """``bastion user unlock``: every counter of one account, lifted at once."""
    reset(
        conn,
        password_key(tenant_id, upn),
        factor_key(tenant_id, user_id, OTP),
        factor_key(tenant_id, user_id, RECOVERY_CODE),
    )


def human_wait(seconds: int) -> str:
    """A wait as people read it, never shorter than the real one: to the second under 90
    seconds, rounded up to the minute under 90 minutes, to the hour beyond; written as
    every duration is (:func:`~bastion.core.text.human_duration`)."""
    if seconds >= 90:
        minutes = math.ceil(seconds / 60)
        seconds = minutes * 60 if minutes < 90 else math.ceil(minutes / 60) * 3600
    return human_duration(seconds)
