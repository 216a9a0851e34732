"""The auth flow against httpx.MockTransport: renewal on invalid_token, step-up on an
RFC 9470 challenge, each at most once (issue 11 item 5)."""

from __future__ import annotations

import httpx
import pytest

from bastion.client.bearer_auth import BearerAuth
from bastion.client.errors import SignInRequired, StepUpRequired
from bastion.client.oauth import Challenge

URL = "https://127.0.0.1/api/mail/commands/Get-Mailbox"
INVALID = 'Bearer error="invalid_token", error_description="expired"'
STEP_UP = 'Bearer error="insufficient_user_authentication", max_age=300, acr_values="mfa"'


class Tokens:
    """A token source that numbers the tokens it gives and says why it gave them."""

    def __init__(self) -> None:
        self.given: list[str] = []
        self.challenges: list[Challenge] = []

    def access_token(self, audience: str, *, reject: str | None = None) -> str:
        self.given.append(f"renewed-past-{reject}" if reject else "first")
        return self.given[-1]

    def step_up(
        self, audience: str, rejected: str, challenge: Challenge, *, command: str | None = None
    ) -> str:
        self.challenges.append(challenge)
        self.given.append(f"stepped-up-for-{command}")
        return self.given[-1]


def serve(answers: list[tuple[int, str | None]]) -> tuple[httpx.Client, list[str]]:
    """A client whose server answers each request with the next (status, challenge)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"].removeprefix("Bearer "))
        status, challenge = answers.pop(0)
        headers = {"WWW-Authenticate": challenge} if challenge else {}
        return httpx.Response(status, headers=headers, json={"detail": "refused"})

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def send(client: httpx.Client, tokens: Tokens) -> httpx.Response:
    auth = BearerAuth(tokens, "https://127.0.0.1/api/mail", service="mail", command="Get-Mailbox")
    return client.post(URL, json={}, auth=auth)


def test_the_token_is_sent_and_a_success_needs_nothing_more() -> None:
    client, seen = serve([(200, None)])
    tokens = Tokens()
    assert send(client, tokens).status_code == 200
    assert seen == ["first"] and tokens.given == ["first"]


def test_an_invalid_token_is_renewed_once_and_the_request_sent_again() -> None:
    client, seen = serve([(401, INVALID), (200, None)])
    tokens = Tokens()
    assert send(client, tokens).status_code == 200
    assert seen == ["first", "renewed-past-first"]


def test_a_second_refusal_after_the_renewal_is_an_error() -> None:
    client, seen = serve([(401, INVALID), (401, INVALID), (200, None)])
    with pytest.raises(SignInRequired) as caught:
        send(client, Tokens())
    assert len(seen) == 2
    assert str(caught.value).startswith("mail refused the renewed token: expired")
    assert caught.value.status == 401 and caught.value.exit_code == 4


def test_a_step_up_challenge_steps_up_once_and_sends_again() -> None:
    client, seen = serve([(401, STEP_UP), (200, None)])
    tokens = Tokens()
    assert send(client, tokens).status_code == 200
    assert seen == ["first", "stepped-up-for-Get-Mailbox"]
    assert tokens.challenges == [Challenge("insufficient_user_authentication", None, 300, "mfa")]


def test_a_second_step_up_challenge_is_an_error() -> None:
    client, seen = serve([(401, STEP_UP), (401, STEP_UP)])
    with pytest.raises(StepUpRequired) as caught:
        send(client, Tokens())
    assert len(seen) == 2
    assert caught.value.max_age == 300 and caught.value.acr_values == "mfa"
    assert "did not bring a recent second factor" in (caught.value.hint or "")


def test_renewal_and_step_up_are_each_tried_once_in_either_order() -> None:
    client, seen = serve([(401, INVALID), (401, STEP_UP), (200, None)])
    assert send(client, Tokens()).status_code == 200
    assert seen == ["first", "renewed-past-first", "stepped-up-for-Get-Mailbox"]


def test_the_same_body_and_idempotency_key_are_sent_again() -> None:
    bodies: list[tuple[bytes, str | None]] = []
    answers = [401, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.content, request.headers.get("idempotency-key")))
        return httpx.Response(answers.pop(0), headers={"WWW-Authenticate": INVALID})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    auth = BearerAuth(Tokens(), "https://127.0.0.1/api/mail", service="mail", command="Set-X")
    client.post(URL, json={"a": 1}, headers={"Idempotency-Key": "k1"}, auth=auth)
    assert len(bodies) == 2 and bodies[0] == bodies[1] and bodies[0][1] == "k1"


def test_other_answers_pass_through_untouched() -> None:
    for status in (403, 404, 500):
        client, seen = serve([(status, None)])
        assert send(client, Tokens()).status_code == status and len(seen) == 1
