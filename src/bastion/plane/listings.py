"""Listings: keyset pagination with opaque, signed cursors.

A listing command returns a :class:`Listing`: a query and the columns of a unique, stable
order. The plane reads one page at a time from the database (``WHERE key > last ORDER BY key
LIMIT n``), so memory never grows with the tenant, and hands the client a cursor naming the
last key it saw. Because the position is a key, not an offset, a listing that runs across
token renewals, server restarts and concurrent inserts and deletes never repeats an object
and never skips one that existed throughout.

A cursor is ``base64url(JSON).base64url(HMAC-SHA-256)`` under a key derived from the master
key; the MAC covers the tenant, the caller, the command and its parameters, so a cursor
that was edited, or that is replayed by another user, for another query or in another
tenant, is refused (R2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, Select, func, select, tuple_

from bastion.core.errors import UsageError
from bastion.core.secrets_at_rest import Keyring

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_PURPOSE = "listing-cursor"


class BadCursor(UsageError):
    problem = "invalid-cursor"
    title = "Invalid cursor"


@dataclass(frozen=True)
class Listing(Generic[T]):
    """What a listing command returns: rows in key order, turned into output items."""

    query: Select[Any]
    key: Sequence[ColumnElement[Any]]
    to_item: Callable[[Row[Any]], T]


@dataclass(frozen=True)
class CursorBinding:
    """What a cursor is valid for."""

    tenant_id: str
    subject: str
    command: str
    parameters: dict[str, Any]

    def digest(self) -> str:
        text = json.dumps(
            [self.tenant_id, self.subject, self.command, self.parameters],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(keyring: Keyring, binding: CursorBinding, last_key: list[Any]) -> str:
    body = json.dumps({"k": last_key, "b": binding.digest()}, separators=(",", ":")).encode()
    mac = hmac.new(keyring.key(_PURPOSE), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def decode_cursor(keyring: Keyring, binding: CursorBinding, cursor: str) -> list[Any]:
    try:
        body_text, mac_text = cursor.split(".", 1)
        body, mac = _unb64(body_text), _unb64(mac_text)
    except ValueError as exc:
        raise BadCursor("the cursor is malformed.", hint="Start the listing again.") from exc
    expected = hmac.new(keyring.key(_PURPOSE), body, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise BadCursor("the cursor was altered.", hint="Use the cursor exactly as returned.")
    data = json.loads(body)
    if data.get("b") != binding.digest():
        raise BadCursor(
            "the cursor belongs to another listing.",
            hint="A cursor continues the same command, with the same parameters, for the "
            "same user.",
        )
    key = data.get("k")
    if not isinstance(key, list):
        raise BadCursor("the cursor is malformed.")
    return key


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    last_key: list[Any] | None  # None when the listing is complete


def read_page(conn: Connection, listing: Listing[T], after: list[Any] | None, size: int) -> Page[T]:
    query = listing.query
    if after is not None:
        if len(after) != len(listing.key):
            raise BadCursor("the cursor does not fit this listing.")
        query = query.where(tuple_(*listing.key) > tuple_(*after))
    query = query.order_by(*listing.key).limit(size + 1)
    rows = conn.execute(query).all()
    more = len(rows) > size
    rows = rows[:size]
    items = [listing.to_item(row) for row in rows]
    names = _key_names(listing)
    last = [rows[-1]._mapping[name] for name in names] if more and rows else None
    return Page(items, last)


def count(conn: Connection, listing: Listing[Any]) -> int:
    """How many objects the whole listing holds: asked for with its first page only (a
    client showing progress), and answered from the same snapshot as that page."""
    counted = select(func.count()).select_from(listing.query.subquery())
    return int(conn.execute(counted).scalar_one())


def _key_names(listing: Listing[Any]) -> list[str]:
    names = []
    for column in listing.key:
        name = getattr(column, "key", None) or getattr(column, "name", None)
        if not isinstance(name, str):
            raise TypeError("listing keys must be named columns")
        names.append(name)
    return names
