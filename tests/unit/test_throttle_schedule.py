"""The throttle's schedule and its settings (A3, decision 0019)."""

from __future__ import annotations

import pytest

from bastion.authority import throttle
from bastion.core.config import Settings
from bastion.core.errors import ConfigError


def test_pauses_start_after_five_failures_double_and_stop_at_the_lockout() -> None:
    settings = Settings()
    key = throttle.password_key("t", "Someone@Acme")
    delays = [throttle.delay_after(settings, key, n) for n in range(1, 13)]
    assert delays == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]


def test_an_address_gets_more_free_failures_and_no_cap() -> None:
    settings = Settings(attempt_limit=3)
    key = throttle.source_key("t", "127.0.0.1")
    assert throttle.delay_after(settings, key, throttle.SOURCE_FREE_FAILURES - 1) == 0
    assert throttle.delay_after(settings, key, throttle.SOURCE_FREE_FAILURES) == 30
    assert throttle.delay_after(settings, key, 1000) == settings.lockout_seconds


def test_a_low_limit_reaches_the_lockout_before_the_free_failures_end() -> None:
    settings = Settings(attempt_limit=3, lockout_seconds=120)
    key = throttle.factor_key("t", "u", throttle.OTP)
    assert [throttle.delay_after(settings, key, n) for n in (1, 2, 3, 4)] == [0, 0, 120, 120]
    assert throttle.tries_left(settings, key, throttle.State(1, 0)) == 2


def test_names_are_counted_as_look_up_compares_them() -> None:
    assert throttle.password_key("t", " Ann@Acme ") == throttle.password_key("t", "ann@acme")
    assert throttle.password_key("t", "ann@acme") != throttle.password_key("u", "ann@acme")
    assert len(throttle.password_key("t" * 36, "x" * 320).value) <= 200


@pytest.mark.parametrize("limit", [0, 101])
def test_an_attempt_limit_outside_1_to_100_is_refused(limit: int) -> None:
    with pytest.raises(ConfigError):
        Settings(attempt_limit=limit).check()


@pytest.mark.parametrize("seconds", [59, 86401])
def test_a_lockout_that_would_not_lift_within_a_day_is_refused(seconds: int) -> None:
    with pytest.raises(ConfigError):
        Settings(lockout_seconds=seconds).check()


def test_waits_are_said_in_human_units() -> None:
    assert throttle.human_wait(1) == "1 second"
    assert throttle.human_wait(30) == "30 seconds"
    assert throttle.human_wait(900) == "15 minutes"
    assert throttle.human_wait(7200) == "2 hours"
