"""Text a user typed, made safe to store and log.

PostgreSQL refuses NUL in text, and a CR or LF in a logged value could forge a log line
(L2). Lookups treat a name with control characters as unknown; stored values keep them,
escaped.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def escape_control(value: str) -> str:
    """Each control character as a visible ``\\uXXXX`` escape; other text unchanged."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def escape_all(value: Any) -> Any:
    """:func:`escape_control` through lists and dicts, for structured records."""
    if isinstance(value, str):
        return escape_control(value)
    if isinstance(value, list | tuple):
        return [escape_all(v) for v in value]
    if isinstance(value, dict):
        return {escape_control(str(k)): escape_all(v) for k, v in value.items()}
    return value


def _unit(count: int, name: str) -> str:
    return f"{count} {name}" if count == 1 else f"{count} {name}s"


def human_duration(seconds: int) -> str:
    """A whole number of seconds as people say it: "45 seconds", "10 minutes", "1 hour",
    "2 minutes 30 seconds" (never "0 minutes" for a window under a minute)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return _unit(seconds, "second")
    if seconds % 3600 == 0:
        return _unit(seconds // 3600, "hour")
    minutes, rest = divmod(seconds, 60)
    if rest == 0:
        return _unit(minutes, "minute")
    return f"{_unit(minutes, 'minute')} {_unit(rest, 'second')}"
