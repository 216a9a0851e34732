"""Counting attempts in a window, in the database so every process sees the same count."""

from __future__ import annotations

import math

from sqlalchemy import Connection, insert, select, update

from bastion.store.schema import attempt_counters


def count(conn: Connection, key: str, *, window: float, now: float) -> int:
    row = conn.execute(select(attempt_counters).where(attempt_counters.c.key == key)).first()
    if row is None or now - row.window_start > window:
        return 0
    return int(row._mapping["count"])


def retry_after(conn: Connection, key: str, *, window: float, now: float) -> int:
    """Whole seconds until the window of ``key`` ends (at least 1)."""
    row = conn.execute(select(attempt_counters).where(attempt_counters.c.key == key)).first()
    if row is None:
        return 1
    return max(1, math.ceil(float(row.window_start) + window - now))


def hit(conn: Connection, tenant_id: str, key: str, *, window: float, now: float) -> int:
    """Record one attempt; returns the count in the current window, this one included."""
    row = conn.execute(select(attempt_counters).where(attempt_counters.c.key == key)).first()
    if row is None:
        conn.execute(
            insert(attempt_counters).values(key=key, tenant_id=tenant_id, window_start=now, count=1)
        )
        return 1
    if now - row.window_start > window:
        conn.execute(
            update(attempt_counters)
            .where(attempt_counters.c.key == key)
            .values(window_start=now, count=1)
        )
        return 1
    conn.execute(
        update(attempt_counters)
        .where(attempt_counters.c.key == key)
        .values(count=attempt_counters.c.count + 1)
    )
    return int(row._mapping["count"]) + 1
