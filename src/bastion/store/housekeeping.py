"""Deleting what has expired: page flows, pending requests, used codes, old counters.

Called from busy endpoints at most once a minute per process, so that no table grows
without bound and no separate job is needed. Sign-in sessions and audit events are kept.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Connection, delete, select

from bastion.store.schema import (
    attempt_counters,
    auth_requests,
    authorization_codes,
    device_codes,
    refresh_tokens,
    revoked_access_tokens,
    sessions,
    throttles,
    web_sessions,
)

INTERVAL = 60.0
#: refresh tokens outlive their session's absolute lifetime (at most 24 h) by this much
RETENTION = 24 * 3600


class Schedule:
    """When this process last purged: a purge is due at most once per :data:`INTERVAL`
    seconds (the server's context holds one per process)."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last_run = float("-inf")

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last_run < self.interval:
                return False
            self._last_run = now
            return True


def purge_expired(conn: Connection, now: float) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
    conn.execute(delete(auth_requests).where(auth_requests.c.expires_at < now))
    conn.execute(delete(authorization_codes).where(authorization_codes.c.expires_at < now - 600))
    conn.execute(delete(device_codes).where(device_codes.c.expires_at < now - 600))
    conn.execute(delete(attempt_counters).where(attempt_counters.c.window_start < now - RETENTION))
    # an address's sign-in counter is forgotten after a quiet day anyway (decision 0019);
    # an account's stays until a success or an unlock
    conn.execute(
        delete(throttles).where(
            throttles.c.key.like("source:%"), throttles.c.last_failure_at < now - RETENTION
        )
    )
    conn.execute(delete(revoked_access_tokens).where(revoked_access_tokens.c.expires_at < now))
    old_sessions = select(sessions.c.id).where(sessions.c.created_at < now - 2 * RETENTION)
    conn.execute(delete(refresh_tokens).where(refresh_tokens.c.session_id.in_(old_sessions)))
