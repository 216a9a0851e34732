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


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def human_duration(seconds: float) -> str:
    """A duration as people say it, in its two largest units, rounded to the second:
    45 -> "45 seconds" (never "0 minutes"), 90 -> "1 minute 30 seconds", 5400 -> "1 hour
    30 minutes", 28800 -> "8 hours" (never "0.0166667 hours")."""
    left = max(0, round(seconds))
    parts: list[str] = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count and len(parts) < 2:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        elif parts:
            break  # "1 hour 0 minutes 5 seconds" says less than "1 hour"
    return " ".join(parts) or "0 seconds"
