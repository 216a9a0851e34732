"""Mail addresses: what the mail service accepts as one, and how it stores them.

An address is ``local@domain`` in plain ASCII (RFC 5321 section 4.1.2, without quoted local
parts or address literals): the local part is one or more dot-separated atoms of letters,
digits and ``!#$%&'*+/=?^_`{|}~-`` (RFC 5322 section 3.2.3), the domain one or more
dot-separated labels of letters, digits and inner hyphens, the whole at most 320
characters. Addresses are compared and stored lower-case: ``Alex@Contoso`` and
``alex@contoso`` are one address.

Every address of every mailbox, primary or alias, is a row of ``mail_addresses``, whose key
(tenant, address) makes an address belong to one mailbox at most. The mailbox row keeps a
sorted copy of its other addresses in ``mailboxes.aliases``, written in the same transaction
by :func:`write_aliases`, so a listing page needs no second query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Connection, select, update

from bastion.core.errors import Conflict, UsageError
from bastion.core.text import escape_control
from bastion.store.schema import mail_addresses, mailboxes

MAX_LENGTH = 320
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
RULE = (
    "An address is local@domain in ASCII letters, digits and punctuation, without spaces, "
    f"at most {MAX_LENGTH} characters, e.g. alex.diaz@contoso.com."
)


def _why_not(address: str) -> str | None:
    """What is wrong with ``address`` (already stripped and lower-cased), or None."""
    if not address:
        return "it is empty"
    if len(address) > MAX_LENGTH:
        return f"it is longer than {MAX_LENGTH} characters"
    if any(not 33 <= ord(c) <= 126 for c in address):
        return "it holds a space, a control character or a character outside ASCII"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "it is not of the form local@domain"
    if "@" in local:
        return "it has more than one @"
    if not _LOCAL.fullmatch(local):
        return f"'{local}' is not a valid local part"
    if not _DOMAIN.fullmatch(domain):
        return f"'{domain}' is not a valid domain"
    return None


def normalize(value: str, parameter: str) -> str:
    """``value`` as a stored address (lower-case), or a 400 naming ``parameter``."""
    address = value.strip()
    # Lower-case only ASCII: str.lower() maps some other characters (the Kelvin sign) to
    # ASCII letters, which would make an invalid address valid.
    if address.isascii():
        address = address.lower()
    reason = _why_not(address)
    if reason is not None:
        shown = escape_control(value if len(value) <= 80 else value[:77] + "...")
        raise UsageError(
            f"parameter '{parameter}': '{shown}' is not a mail address: {reason}.",
            hint=RULE,
            parameter=parameter,
        )
    return address


def normalize_all(values: Iterable[str], parameter: str) -> list[str]:
    """Each of ``values`` normalized, without repeats, in the order given."""
    found: dict[str, None] = {}
    for value in values:
        found[normalize(value, parameter)] = None
    return list(found)


def is_address(value: str) -> bool:
    address = value.strip()
    return address.isascii() and _why_not(address.lower()) is None


def require_free(
    conn: Connection, tenant_id: str, addresses: dict[str, str], mailbox_id: str | None = None
) -> None:
    """Refuse (409) if an address (mapped to the parameter that brings it) belongs to a
    mailbox other than ``mailbox_id``."""
    if not addresses:
        return
    taken = conn.execute(
        select(mail_addresses.c.address, mail_addresses.c.mailbox_id).where(
            mail_addresses.c.tenant_id == tenant_id,
            mail_addresses.c.address.in_(sorted(addresses)),
        )
    ).all()
    for address, owner in sorted(taken):
        if owner != mailbox_id:
            raise Conflict(
                f"the address {address} is already in use by another mailbox.",
                hint="Choose another address, or remove it from the other mailbox first.",
                parameter=addresses[address],
                address=address,
            )


def addresses_of(conn: Connection, mailbox_id: str) -> tuple[str, list[str]]:
    """(the primary address, the other addresses sorted) of a mailbox, as stored."""
    primary = ""
    others: list[str] = []
    for address, is_primary in conn.execute(
        select(mail_addresses.c.address, mail_addresses.c.is_primary).where(
            mail_addresses.c.mailbox_id == mailbox_id
        )
    ):
        if is_primary:
            primary = address
        else:
            others.append(address)
    return primary, sorted(others)


def write_aliases(conn: Connection, mailbox_id: str) -> list[str]:
    """Copy the mailbox's non-primary addresses, sorted, into ``mailboxes.aliases``."""
    primary, others = addresses_of(conn, mailbox_id)
    conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id)
        .values(primary_address=primary, aliases=others)
    )
    return others
