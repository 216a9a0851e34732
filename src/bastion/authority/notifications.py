"""Telling a user of a change to their account or a use of their credentials (A6, S6).

A notification exists as an audit record ``notify.<kind>``, one per notification address
of the user, naming the address; a mailer reads them from the log. Users have no e-mail
address or phone number yet, so the sign-in name is the one address.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from bastion.audit import events
from bastion.directory.users import User


def notification_addresses(user: User) -> list[str]:
    """Every address a notice to ``user`` goes to."""
    return [user.upn]


def notify(
    conn: Connection, tenant_id: str, user: User, kind: str, now: float, **data: Any
) -> None:
    """One ``notify.<kind>`` record per notification address, in ``conn``'s transaction."""
    for address in notification_addresses(user):
        events.record(
            conn,
            tenant_id=tenant_id,
            type=f"notify.{kind}",
            outcome="success",
            now=now,
            actor_id=user.id,
            actor_name=user.upn,
            address=address,
            **data,
        )
