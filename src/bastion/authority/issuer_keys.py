"""A per-process cache of token issuers' signing keys, one entry per issuer.

The mechanism behind :class:`bastion.authority.federated_keys.FederatedKeys` (external
OpenID providers named by applications' federated credentials) and
:class:`bastion.plane.remote_keys.RemoteKeys` (a standalone service's authority); each of
them says how keys are downloaded and what a failure means to its callers.

An issuer's keys are fetched again once they are ``ttl`` seconds old, or when a token names
a ``kid`` they lack, but never more often than once in ``min_refetch`` seconds per issuer,
whatever the tokens say; one fetch at a time per issuer. When a download raises the
owner's ``unavailable`` error, the keys fetched before stay usable until they are
``max_stale`` seconds old; its ``untrusted`` error (an issuer not to be trusted) leaves the
issuer with no keys. Either error is remembered for the owner to report. More than
``max_issuers`` issuers and the cache starts over (bounds memory).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from joserfc.jwk import KeySet

from bastion.core.clock import Clock

E = TypeVar("E", bound=Exception)


@dataclass(frozen=True)
class IssuerKeys(Generic[E]):
    """What is known of one issuer's keys."""

    #: when the last fetch was attempted, successful or not
    attempted_at: float
    keys: KeySet | None = None
    kids: frozenset[str] = frozenset()
    #: when ``keys`` were fetched
    fetched_at: float = 0.0
    #: why the last fetch failed, if it did
    error: E | None = None


@dataclass(frozen=True)
class FetchMessages(Generic[E]):
    """What the cache logs, in its owner's words (each with the issuer, and the error)."""

    log: logging.Logger
    #: info, after keys were fetched
    fetched: str
    #: warning, when a download raised the ``unavailable`` error
    unavailable: str
    #: warning, when a download raised the ``untrusted`` error
    untrusted: str = ""
    #: the error as logged
    error_text: Callable[[E], str] = str


class IssuerKeyCache(Generic[E]):
    """Issuers' keys, fetched with ``download`` (``issuer -> KeySet``) and kept a while."""

    def __init__(
        self,
        clock: Clock,
        download: Callable[[str], KeySet],
        *,
        unavailable: type[E],
        untrusted: type[E] | None = None,
        ttl: float,
        min_refetch: float,
        max_stale: float,
        max_issuers: int,
        messages: FetchMessages[E],
    ) -> None:
        self._clock = clock
        self._download = download
        self._unavailable = unavailable
        self._untrusted: tuple[type[E], ...] = (untrusted,) if untrusted is not None else ()
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._max_stale = max_stale
        self._max_issuers = max_issuers
        self._messages = messages
        self._guard = threading.Lock()
        self._entries: dict[str, IssuerKeys[E]] = {}
        self._fetching: dict[str, threading.Lock] = {}

    def prefetch(self, issuer: str, kid: str | None) -> None:
        """Fetch the issuer's keys if they are missing, old or lack ``kid`` (and the last
        attempt is not too recent). Raises nothing but what ``download`` raises other than
        the ``unavailable`` and ``untrusted`` errors."""
        if not self.due(issuer, kid):
            return
        with self._lock_for(issuer):
            if self.due(issuer, kid):  # unless another request fetched them meanwhile
                self._fetch(issuer)

    def due(self, issuer: str, kid: str | None) -> bool:
        """Whether :meth:`prefetch` would fetch the issuer's keys now."""
        entry = self._entries.get(issuer)
        if entry is None:
            return True
        now = self._clock.now()
        if 0 <= now - entry.attempted_at < self._min_refetch:
            return False
        if entry.keys is None or now - entry.fetched_at >= self._ttl:
            return True
        return kid is not None and kid not in entry.kids

    def entry(self, issuer: str) -> IssuerKeys[E] | None:
        """What is known of the issuer's keys (the cache only), or None before any fetch."""
        return self._entries.get(issuer)

    def usable(self, entry: IssuerKeys[E]) -> KeySet | None:
        """The entry's keys unless there are none or they are older than ``max_stale``."""
        if entry.keys is not None and self._clock.now() - entry.fetched_at <= self._max_stale:
            return entry.keys
        return None

    def forget(self) -> None:
        with self._guard:
            self._entries.clear()

    def _lock_for(self, issuer: str) -> threading.Lock:
        with self._guard:
            return self._fetching.setdefault(issuer, threading.Lock())

    def _fetch(self, issuer: str) -> None:
        now = self._clock.now()
        previous = self._entries.get(issuer)
        log = self._messages.log
        try:
            keys = self._download(issuer)
        except self._unavailable as exc:
            log.warning(
                self._messages.unavailable,
                extra={"fields": {"issuer": issuer, "error": self._messages.error_text(exc)}},
            )
            # keys fetched before stay usable for a while (see ``usable``)
            self._store(
                issuer,
                IssuerKeys(
                    attempted_at=now,
                    keys=previous.keys if previous else None,
                    kids=previous.kids if previous else frozenset(),
                    fetched_at=previous.fetched_at if previous else 0.0,
                    error=exc,
                ),
            )
            return
        except self._untrusted as exc:
            log.warning(
                self._messages.untrusted,
                extra={"fields": {"issuer": issuer, "error": self._messages.error_text(exc)}},
            )
            self._store(issuer, IssuerKeys(attempted_at=now, error=exc))
            return
        kids = frozenset(k.kid for k in keys.keys if k.kid)
        log.info(self._messages.fetched, extra={"fields": {"issuer": issuer}})
        self._store(issuer, IssuerKeys(attempted_at=now, keys=keys, kids=kids, fetched_at=now))

    def _store(self, issuer: str, entry: IssuerKeys[E]) -> None:
        with self._guard:
            if issuer not in self._entries and len(self._entries) >= self._max_issuers:
                self._entries.clear()
            self._entries[issuer] = entry
