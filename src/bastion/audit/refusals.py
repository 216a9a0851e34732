"""Refusals of callers who proved no identity, audited without letting a flood fill the log.

A refusal of an authenticated caller is recorded each time (``plane/pipeline.py``). One of an
anonymous caller (no token, a forged, expired or revoked one) is recorded at most once per
source address and tenant in each :data:`WINDOW`: the first refusal of a window writes a
record whose ``repeats`` says how many refusals from that source went unrecorded since the
previous record. So a flood costs one record per source per minute, and the count is kept.

The counts live in the memory of each server process, in its context object (a bounded
table: the least recently seen sources are dropped first), so several workers may each
write their own record in a window; a restart loses only the unrecorded counts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

#: seconds during which one source's refusals are counted into a single record
WINDOW = 60.0
#: sources remembered at once; beyond this the oldest are forgotten
MAX_SOURCES = 10_000


@dataclass
class _Seen:
    recorded_at: float
    #: refusals since ``recorded_at`` that were counted but not recorded
    unrecorded: int = 0


class AnonymousRefusals:
    def __init__(self, *, window: float = WINDOW, max_sources: int = MAX_SOURCES) -> None:
        self.window = window
        self.max_sources = max_sources
        self._seen: OrderedDict[tuple[str, str], _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def due(self, tenant_id: str, source: str | None, now: float) -> int | None:
        """Count one refusal; if a record is due, the number of earlier unrecorded refusals
        it must carry (``repeats``), else None."""
        key = (tenant_id, source or "unknown")
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.recorded_at < self.window:
                seen.unrecorded += 1
                self._seen.move_to_end(key)
                return None
            repeats = seen.unrecorded if seen is not None else 0
            self._seen[key] = _Seen(recorded_at=now)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_sources:
                self._seen.popitem(last=False)
            return repeats
