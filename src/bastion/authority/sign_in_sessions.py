"""Sign-in sessions: one per successful sign-in, server-side.

A session records when and how the person authenticated (``auth_time``, ``amr``, ``acr``),
and ends at the tenant's absolute lifetime or after its idle timeout, whichever comes first
(NIST SP 800-63B-4 section 2.2.3). Ending a session revokes every refresh token it issued.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, insert, select, update

from bastion.core.errors import InvalidGrant, InvalidRequest
from bastion.core.secrets_at_rest import random_token
from bastion.core.text import has_control, human_duration
from bastion.directory.tenants import TenantPolicy
from bastion.store.prepared import Prepared
from bastion.store.schema import refresh_tokens, sessions, users

#: ``acr`` values: a password alone, or a password and a second factor.
ACR_ONE_FACTOR = "urn:bastion:acr:1fa"
ACR_TWO_FACTORS = "urn:bastion:acr:2fa"
SECOND_FACTOR_METHODS = frozenset({"otp", "hwk", "swk", "mfa"})
#: longest ``acr_values`` accepted with a request
MAX_ACR_VALUES = 512
_MAX_AGE = re.compile(r"[0-9]{1,9}")


def acr_for(amr: list[str]) -> str:
    return ACR_TWO_FACTORS if SECOND_FACTOR_METHODS & set(amr) else ACR_ONE_FACTOR


@dataclass(frozen=True)
class SignInSession:
    id: str
    tenant_id: str
    user_id: str
    created_at: float
    auth_time: float
    mfa_time: float | None
    amr: tuple[str, ...]
    acr: str
    last_active_at: float
    revoked_at: float | None


def session_from_row(row: Any) -> SignInSession:
    """A session from a row that has the ``sessions`` columns (joins included)."""
    return SignInSession(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        created_at=row.created_at,
        auth_time=row.auth_time,
        mfa_time=row.mfa_time,
        amr=tuple(row.amr),
        acr=row.acr,
        last_active_at=row.last_active_at,
        revoked_at=row.revoked_at,
    )


def create_session(
    conn: Connection, *, tenant_id: str, user_id: str, amr: list[str], now: float
) -> SignInSession:
    sid = random_token(32)
    two = bool(SECOND_FACTOR_METHODS & set(amr))
    conn.execute(
        insert(sessions).values(
            id=sid,
            tenant_id=tenant_id,
            user_id=user_id,
            created_at=now,
            auth_time=now,
            mfa_time=now if two else None,
            amr=amr,
            acr=acr_for(amr),
            last_active_at=now,
            revoked_at=None,
        )
    )
    found = find_session(conn, tenant_id, sid)
    assert found is not None
    return found


def find_session(conn: Connection, tenant_id: str, sid: str) -> SignInSession | None:
    row = conn.execute(
        select(sessions).where(sessions.c.tenant_id == tenant_id, sessions.c.id == sid)
    ).first()
    return session_from_row(row) if row else None


def end_reason(session: SignInSession, policy: TenantPolicy, now: float) -> str | None:
    """Why the session is over, in words for the person; None while it is alive."""
    if session.revoked_at is not None:
        return "Your sign-in was ended (signed out or revoked)."
    if now - session.created_at > policy.session_lifetime:
        limit = human_duration(policy.session_lifetime)
        return f"Your sign-in reached the tenant's limit of {limit}."
    if now - session.last_active_at > policy.idle_timeout:
        return f"Your sign-in was idle for more than {human_duration(policy.idle_timeout)}."
    return None


def lasts_until(session: SignInSession, policy: TenantPolicy, now: float) -> float:
    """When the session ends if it is used at ``now`` and then not again: its absolute end,
    or the idle timeout counted from ``now``, whichever comes first."""
    return min(session.created_at + policy.session_lifetime, now + policy.idle_timeout)


def parse_step_up(max_age: object, acr_values: object) -> tuple[int | None, tuple[str, ...]]:
    """The RFC 9470 (OpenID Connect) ``max_age`` and ``acr_values`` of a request, checked."""
    age: int | None = None
    if max_age is not None and max_age != "":
        if not isinstance(max_age, str) or not _MAX_AGE.fullmatch(max_age):
            raise InvalidRequest("max_age must be a number of seconds.")
        age = int(max_age)
    text = "" if acr_values is None else str(acr_values)
    if len(text) > MAX_ACR_VALUES or has_control(text):
        raise InvalidRequest(
            f"acr_values may not contain control characters or be longer than {MAX_ACR_VALUES}."
        )
    return age, tuple(text.split())


def age_of_sign_in(session: SignInSession, now: float) -> float:
    """Seconds since the sign-in, counted from the whole second a token states as its
    ``auth_time`` (tokens carry ``int(auth_time)``). The command plane measures from that
    second, so the authority must too: measured from the exact time, a command in a
    step-up window's last second is refused by the plane, while the authority finds the
    sign-in recent enough, asks no factor, and issues a token that is refused again."""
    return now - math.floor(session.auth_time)


def needs_step_up(
    session: SignInSession, *, max_age: int | None, acr_values: Sequence[str], now: float
) -> bool:
    """RFC 9470: whether the session is too old for ``max_age`` or too weak for
    ``acr_values`` (only the two-factor value is ever asked for)."""
    if max_age is not None and age_of_sign_in(session, now) > max_age:
        return True
    return ACR_TWO_FACTORS in acr_values and session.acr != ACR_TWO_FACTORS


def require_alive(session: SignInSession, policy: TenantPolicy, now: float) -> None:
    reason = end_reason(session, policy, now)
    if reason:
        raise InvalidGrant(reason, hint="Sign in again.")


#: every token grant runs it: through the driver (``Prepared``)
_TOUCH = Prepared(
    update(sessions)
    .where(sessions.c.id == bindparam("b_sid"))
    .values(last_active_at=bindparam("b_now"))
)


def touch(conn: Connection, sid: str, now: float) -> None:
    """Activity: the idle timeout counts again from ``now``."""
    _TOUCH.run(conn, {"b_sid": sid, "b_now": now})


def record_second_factor(conn: Connection, session: SignInSession, method: str, now: float) -> None:
    """A step-up: the second factor again, which refreshes ``auth_time`` (RFC 9470)."""
    amr = list(session.amr)
    for value in ("pwd", method, "mfa"):
        if value not in amr:
            amr.append(value)
    conn.execute(
        update(sessions)
        .where(sessions.c.id == session.id)
        .values(auth_time=now, mfa_time=now, amr=amr, acr=acr_for(amr), last_active_at=now)
    )


def revoke_session(conn: Connection, sid: str, now: float) -> None:
    _revoke_sessions(conn, sessions.c.id == sid, now)


def _revoke_sessions(conn: Connection, which: ColumnElement[bool], now: float) -> int:
    """Revoke the sessions ``which`` selects and every refresh token issued from them;
    returns how many sessions were still live."""
    chosen = select(sessions.c.id).where(which).scalar_subquery()
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.session_id.in_(chosen), refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    ended = conn.execute(
        update(sessions).where(which, sessions.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return int(ended.rowcount)


def sessions_of_user(
    conn: Connection, tenant_id: str, user_id: str, policy: TenantPolicy, now: float
) -> list[SignInSession]:
    """The user's sign-in sessions that are still alive, newest first (S5, the user's own
    list)."""
    rows = conn.execute(
        select(sessions)
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
        )
        .order_by(sessions.c.created_at.desc())
    ).all()
    found = [session_from_row(row) for row in rows]
    return [session for session in found if end_reason(session, policy, now) is None]


def clients_of_sessions(conn: Connection, sids: Sequence[str]) -> dict[str, list[str]]:
    """For each session, the clients its refresh tokens were issued to (sorted)."""
    if not sids:
        return {}
    rows = conn.execute(
        select(refresh_tokens.c.session_id, refresh_tokens.c.client_id)
        .where(refresh_tokens.c.session_id.in_(list(sids)))
        .distinct()
    ).all()
    clients: dict[str, list[str]] = {}
    for row in rows:
        clients.setdefault(row.session_id, []).append(row.client_id)
    return {sid: sorted(names) for sid, names in clients.items()}


def end_other_sessions(conn: Connection, user_id: str, keep_sid: str, now: float) -> int:
    """End every sign-in of one user except ``keep_sid`` (the one asking), with their
    refresh tokens. ``sessions_valid_after`` is left alone: it would end the kept one too;
    the command plane refuses the others' access tokens by their revoked session."""
    return _revoke_sessions(
        conn,
        and_(
            sessions.c.user_id == user_id,
            sessions.c.id != keep_sid,
            sessions.c.revoked_at.is_(None),
        ),
        now,
    )


def revoke_user_sessions(conn: Connection, user_id: str, now: float) -> int:
    """End every sign-in of one user at once (S5); returns how many sessions ended."""
    return end_sign_ins(conn, users.c.id == user_id, now)


def end_sign_ins(conn: Connection, which: ColumnElement[bool], now: float) -> int:
    """End every sign-in of the users ``which`` selects: their sessions and every refresh
    token family, and their access tokens at the next command (the users'
    ``sessions_valid_after`` becomes ``now``, docs/decisions/0020). Returns how many
    sessions ended."""
    chosen = select(users.c.id).where(which).scalar_subquery()
    conn.execute(update(users).where(users.c.id.in_(chosen)).values(sessions_valid_after=now))
    return _revoke_sessions(conn, sessions.c.user_id.in_(chosen), now)


#: every command runs it: through the driver (``Prepared``)
_STANDING = Prepared(
    select(
        users.c.enabled,
        users.c.sessions_valid_after,
        sessions.c.created_at,
        sessions.c.revoked_at,
    )
    .select_from(
        users.outerjoin(
            sessions, (sessions.c.id == bindparam("b_sid")) & (sessions.c.user_id == users.c.id)
        )
    )
    .where(users.c.id == bindparam("b_user"), users.c.tenant_id == bindparam("b_tenant")),
    boolean_columns=frozenset({"enabled"}),
)


def ended_sign_in(
    conn: Connection, *, tenant_id: str, user_id: str, session_id: str, issued_at: float
) -> str | None:
    """Why an access token's sign-in is over although the token has not expired (continuous
    access evaluation, S5); None while it stands. Read at every command.

    The comparison uses the session's own creation time, stored with sub-second precision:
    the token's whole-second ``iat`` cannot tell a token from just before an administrator's
    change from one of a new sign-in just after it in the same second. A token without a
    session is compared by ``iat``, refused up to the second after the change."""
    row = next(
        iter(_STANDING.rows(conn, {"b_sid": session_id, "b_user": user_id, "b_tenant": tenant_id})),
        None,
    )
    if row is None:
        return "The account no longer exists."
    if not row.enabled:
        return "The account is disabled."
    valid_after = row.sessions_valid_after
    if not session_id:
        if valid_after is not None and issued_at < valid_after:
            return _ENDED
        return None
    if row.created_at is None:
        return "The sign-in this token belongs to does not exist."
    if row.revoked_at is not None or (valid_after is not None and row.created_at < valid_after):
        return _ENDED
    return None


_ENDED = "Your sign-in was ended (signed out, or ended by an administrator)."
