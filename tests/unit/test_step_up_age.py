"""The step-up window's edge and how it is named (issue 9 item 14)."""

from __future__ import annotations

import pytest

from bastion.authority.sign_in_sessions import ACR_TWO_FACTORS, SignInSession, needs_step_up
from bastion.core.text import human_duration


def session(auth_time: float) -> SignInSession:
    return SignInSession(
        id="s",
        tenant_id="t",
        user_id="u",
        created_at=auth_time,
        auth_time=auth_time,
        mfa_time=auth_time,
        amr=("pwd", "otp", "mfa"),
        acr=ACR_TWO_FACTORS,
        last_active_at=auth_time,
        revoked_at=None,
    )


def test_the_authority_counts_the_age_from_the_second_the_token_states() -> None:
    signed_in = session(1000.99)  # a token says auth_time 1000
    # the plane refuses at 1060.5 (1060.5 - 1000 > 60): the authority must agree
    assert needs_step_up(signed_in, max_age=60, acr_values=(), now=1060.5)
    assert not needs_step_up(signed_in, max_age=60, acr_values=(), now=1060.0)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (30, "30 seconds"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (90, "1 minute 30 seconds"),
        (600, "10 minutes"),
        (3600, "1 hour"),
        (7200, "2 hours"),
        (5400, "1 hour 30 minutes"),
    ],
)
def test_durations_are_said_as_people_say_them(seconds: int, said: str) -> None:
    assert human_duration(seconds) == said
