"""Changing what a person signs in with, and what follows from it in the authority.

A new password starts its failure counters again (an administrator's reset, A3), and an
operator's unlock lifts every block of an account at once. The directory stores the
password; the counters are the authority's (``bastion.authority.throttle``).
"""

from __future__ import annotations

from sqlalchemy import Connection

from bastion.authority import throttle
from bastion.directory import users


def set_password_hash(conn: Connection, user: users.User, password_hash: str) -> None:
    """Store a new password's hash and start its failure counters again."""
    users.store_password_hash(conn, user, password_hash)
    throttle.reset(conn, throttle.password_key(user.tenant_id, user.upn))


def unlock(conn: Connection, user: users.User) -> None:
    """Lift every block of a user's sign-in at once: the counters of the account's name and
    of each second factor start again from zero (the operator's break-glass path, A3)."""
    throttle.reset_user(conn, user.tenant_id, user.id, user.upn)
