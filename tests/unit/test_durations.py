"""Durations in words (the authority's messages about session limits and step-up windows)."""

from __future__ import annotations

from bastion.core.text import human_duration


def test_human_durations() -> None:
    assert human_duration(60) == "1 minute"
    assert human_duration(60 / 3600 * 3600) == "1 minute"  # never "0.0166667 hours"
    assert human_duration(28800) == "8 hours"
    assert human_duration(5400) == "1 hour 30 minutes"
    assert human_duration(129600) == "1 day 12 hours"
    assert human_duration(3605) == "1 hour"  # two units at most, and only adjacent ones
    assert human_duration(45) == "45 seconds"
    assert human_duration(0.2) == "0 seconds"
