"""What happens to everything a user had when the user is removed from the directory.

Removing a user is one transaction (with its audit record); nothing is left pointing at a
user who no longer exists:

=========================  ==============================================================
sign-in                    every session and refresh token ends at once; factors and
                           recovery codes are deleted
groups and role groups     the user leaves them (their roles go with them)
their mailbox              deleted with its addresses and permissions, unless it is on
                           litigation hold: then it becomes *inactive* (kept, with its
                           addresses reserved, no owner, still on hold) until the hold is
                           lifted and it is removed
permissions they held      FullAccess and SendAs on other mailboxes are removed
sites they own             kept, with no owner ("ownerless"), for a sites administrator to
                           give a new owner (``Get-Site -Ownerless``, ``Set-Site -Owner``)
site memberships           removed
chat policy assignments    removed (nothing to apply them to)
audit records              kept: they name the user by id and name as they were
=========================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, update

from bastion.authority.sign_in_sessions import revoke_user_sessions
from bastion.directory import users
from bastion.store.schema import (
    chat_policy_assignments,
    factors,
    mailbox_permissions,
    mailboxes,
    site_members,
    sites,
)


@dataclass(frozen=True)
class Removed:
    user: users.User
    mailboxes_deleted: int
    mailboxes_kept_inactive: int
    sites_left_ownerless: int


def remove_user(conn: Connection, user: users.User, now: float) -> Removed:
    revoke_user_sessions(conn, user.id, now)
    conn.execute(delete(factors).where(factors.c.user_id == user.id))
    held = mailboxes.c.litigation_hold.is_(True)
    owned = mailboxes.c.user_id == user.id
    kept = conn.execute(
        update(mailboxes).where(owned, held).values(user_id=None, inactive=True)
    ).rowcount
    deleted = conn.execute(delete(mailboxes).where(owned)).rowcount
    conn.execute(delete(mailbox_permissions).where(mailbox_permissions.c.trustee_id == user.id))
    ownerless = conn.execute(
        update(sites).where(sites.c.owner_id == user.id).values(owner_id=None)
    ).rowcount
    conn.execute(delete(site_members).where(site_members.c.user_id == user.id))
    conn.execute(
        delete(chat_policy_assignments).where(chat_policy_assignments.c.user_id == user.id)
    )
    users.delete_user(conn, user)
    return Removed(user, deleted, kept, ownerless)
