"""Listings that stream page by page and never stop half-way unnoticed (S6).

A listing command answers ``{"items": [...], "next": cursor | null}``. A :class:`Listing`
holds the first page and fetches each next page only when the items before it have been
consumed, so memory does not grow with the tenant. Cursors are opaque and signed by the
server, stay valid across token renewal and server restarts, and resume a listing with no
object missed or repeated.

Checkpoints: after a page is consumed, :attr:`Listing.next_cursor` resumes right after it;
``pages()`` hands out whole pages, each with the cursor of the page after it. If fetching a
page fails, :class:`~bastion.client.errors.ListingIncomplete` says how many objects were
delivered and carries the cursor that resumes right after them.

``count=True`` asks the server to count the whole listing with its first page
(:attr:`Listing.total`), for progress and estimates; later pages are never counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bastion.client.errors import ClientError, ListingIncomplete, ServerError


@dataclass(frozen=True)
class Page:
    items: list[Any]
    #: the cursor of the page after this one; None when this is the last
    next: str | None
    #: how many objects the whole listing holds, when it was asked for (``count=True``)
    #: and this is the first page
    total: int | None = None


def read_page(body: dict[str, Any]) -> Page:
    items, cursor, total = body.get("items"), body.get("next"), body.get("total")
    if not isinstance(items, list) or not (cursor is None or isinstance(cursor, str)):
        raise ServerError("a listing page is not of the form {items, next}.")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        total = None
    return Page(items=items, next=cursor, total=total)


class Listing(Iterator[Any]):
    """The objects of a listing command, fetched page by page as they are consumed."""

    def __init__(self, first: Page, fetch: Callable[[str], Page], *, command: str = "") -> None:
        self._fetch = fetch
        self._buffer: deque[Any] = deque(first.items)
        self.command = command
        #: the cursor of the next page to fetch; None once the last page has been fetched
        self.next_cursor: str | None = first.next
        #: objects delivered so far
        self.count = 0
        #: pages fetched so far, the first included
        self.pages_fetched = 1
        #: how many objects the listing holds, if it was asked for with ``count=True``
        #: (counted with the first page: objects added or removed since are not in it)
        self.total: int | None = first.total

    @property
    def complete(self) -> bool:
        """True once every object has been delivered."""
        return self.next_cursor is None and not self._buffer

    def __iter__(self) -> Listing:
        return self

    def __next__(self) -> Any:
        while not self._buffer:
            if self.next_cursor is None:
                raise StopIteration
            self._next_page()
        self.count += 1
        return self._buffer.popleft()

    def pages(self) -> Iterator[Page]:
        """The rest of the listing, a page at a time (the current page's remaining objects
        first). After each page is processed, ``page.next`` is a safe checkpoint."""
        if self._buffer:
            yield self._take()
        while self.next_cursor is not None:
            self._next_page()
            yield self._take()

    def _take(self) -> Page:
        items = list(self._buffer)
        self._buffer.clear()
        self.count += len(items)
        return Page(items=items, next=self.next_cursor)

    def _next_page(self) -> None:
        assert self.next_cursor is not None
        try:
            page = self._fetch(self.next_cursor)
        except ClientError as exc:
            raise ListingIncomplete(count=self.count, cursor=self.next_cursor, cause=exc) from exc
        self.pages_fetched += 1
        self._buffer.extend(page.items)
        self.next_cursor = page.next

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"next_cursor={self.next_cursor!r}"
        return f"<Listing {self.command} delivered={self.count} {state}>"
