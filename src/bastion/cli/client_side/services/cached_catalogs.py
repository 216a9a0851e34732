"""Catalogs for building parsers, read from the library's disk cache with no request.

The library revalidates a catalog (``Cache-Control: no-cache``, a ``304`` while unchanged)
the first time a connection uses it. The CLI builds a command's parser before anything is
sent, from the catalog on disk while it is younger than :data:`MAX_AGE`, so a command costs
its one request; the catalog is fetched again when it is older, when it lacks the command
(``find_command``), and after the server refuses a command's parameters (400). Catalogs are
versioned by the server (an ``ETag``, also in the body): a stale one is at worst a day
behind a server upgrade, and the server, which validates every parameter, stays the judge.

The library's document cache and its parsers (``catalog.load``, ``discovery.load``) do the
reading; only the network is taken away.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from bastion.client import catalog as catalogs
from bastion.client import discovery as discoveries
from bastion.client import documents
from bastion.client.errors import ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.client.catalog import Catalog, CommandInfo
    from bastion.client.connection import Connection
    from bastion.client.http import Http

#: a catalog on disk younger than this builds parsers without asking the server
MAX_AGE = 24 * 3600.0


class _Miss(Exception):
    pass


class _OnDisk(documents.DocumentCache):
    """The document cache, answering from disk only (any age up to ``max_age``)."""

    def __init__(self, conn: Connection, max_age: float) -> None:
        super().__init__(conn.settings.config_dir / "cache")
        self.max_age = max_age

    def get(
        self,
        http: Http,
        url: str,
        *,
        what: str,
        check: Callable[[dict[str, Any]], None] | None = None,
        refresh: bool = False,
    ) -> documents.Document:
        found = self.kept(url, self.max_age)
        if found is None:
            raise _Miss(url)
        return found


def services(conn: Connection) -> dict[str, str] | None:
    """The tenant's services from the discovery document on disk, or None."""
    try:
        found = discoveries.load(None, _OnDisk(conn, MAX_AGE), conn.issuer)  # type: ignore[arg-type]
    except _Miss:
        return None
    return found.services


def catalog(conn: Connection, service: str) -> Catalog:
    """The catalog of ``service``: from disk while younger than a day, else the library's
    (which revalidates it)."""
    base = (services(conn) or {}).get(service)
    if base is not None:
        try:
            return catalogs.load(None, _OnDisk(conn, MAX_AGE), service, base)  # type: ignore[arg-type]
        except _Miss:
            pass
    return conn.catalog(service)


def refresh_after(conn: Connection, info: CommandInfo, exc: ClientError) -> None:
    """The server refused the parameters: the catalog the parser came from may be behind
    the server's; fetch it again (a 304 when it is not) for the next command."""
    if exc.status == 400:
        with contextlib.suppress(ClientError):
            conn.catalog(info.service, refresh=True)
