"""Time as an argument.

Everything that depends on the clock (codes, lifetimes, lockouts, polling intervals) takes a
:class:`Clock`, so tests move time instead of sleeping. A server process started for tests
can be given an :class:`OffsetFileClock`: the tests write a number of seconds into a file
and the server's notion of "now" moves forward by that much, at once, in every process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when


class OffsetFileClock:
    """The system time plus an offset read from a file (tests only).

    The file holds a decimal number of seconds. It is re-read only when its modification
    time changes, so the cost per call is one ``stat``.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime_ns = -1
        self._offset = 0.0

    def now(self) -> float:
        try:
            mtime_ns = os.stat(self._path).st_mtime_ns
        except FileNotFoundError:
            return time.time() + self._offset
        if mtime_ns != self._mtime_ns:
            text = self._path.read_text().strip()
            self._offset = float(text) if text else 0.0
            self._mtime_ns = mtime_ns
        return time.time() + self._offset
