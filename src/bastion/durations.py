"""Durations in words for people: "8 hours", "1 minute", "1 day 12 hours"."""

from __future__ import annotations

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def human_duration(seconds: float) -> str:
    """``seconds`` in its two largest units, rounded to the second: 60 -> "1 minute",
    5400 -> "1 hour 30 minutes", 28800 -> "8 hours", 0.4 -> "0 seconds"."""
    left = max(0, round(seconds))
    parts: list[str] = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count and len(parts) < 2:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        elif parts:
            break  # "1 hour 0 minutes 5 seconds" says less than "1 hour"
    return " ".join(parts) or "0 seconds"
