"""A small per-process cache for rows that change rarely: tenants and clients.

Entries live :data:`TTL` seconds of monotonic time, so a change made by another process
(``bastion tenant set``, a new client) is seen within that long. Misses are not cached: a
tenant created a moment ago is found at once. Signing keys, which never change, are cached by
``keys.SigningKeys`` for the life of the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

TTL = 1.0
MAX_ENTRIES = 10_000


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float = TTL) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, load: Callable[[], V | None]) -> V | None:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        value = load()
        if value is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
