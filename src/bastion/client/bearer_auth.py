"""A service's bearer token as an httpx auth flow (RFC 6750, RFC 9470).

:class:`BearerAuth` puts the access token for the service's audience on a command, then
answers the service's ``401`` challenges (RFC 6750 section 3), each remedy at most once:

- ``insufficient_user_authentication`` (RFC 9470 section 3): a step-up, a sign-in that
  meets the challenge's ``acr_values``/``max_age``, then the same request again; a second
  such challenge means the new sign-in brought no recent second factor;
- any other ``401`` (``invalid_token``): one renewal past the refused token, then the same
  request again; a second refusal means the sign-in is over.

The tokens come from a :class:`TokenSource` (the connection's
:class:`~bastion.client.auth.Authenticator`), which renews under the shared cache lock or
asks a person to sign in; the flow only decides what to ask it for.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import httpx

from bastion.client.errors import ClientError, SignInRequired, StepUpRequired
from bastion.client.http import json_body
from bastion.client.oauth import Challenge, parse_challenge

STEP_UP = "insufficient_user_authentication"


class TokenSource(Protocol):
    def access_token(self, audience: str, *, reject: str | None = None) -> str: ...

    def step_up(
        self, audience: str, rejected: str, challenge: Challenge, *, command: str | None = None
    ) -> str: ...


class BearerAuth(httpx.Auth):
    """The bearer token of ``audience`` on each request of one command of ``service``."""

    requires_response_body = True  # a refusal's problem details go into the error

    def __init__(self, tokens: TokenSource, audience: str, *, service: str, command: str):
        self.tokens = tokens
        self.audience = audience
        self.service = service
        self.command = command

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.tokens.access_token(self.audience)
        tried: set[str] = set()
        response = yield _bearing(request, token)
        while response.status_code == 401:
            token = self._remedy(response, token, tried)
            response = yield _bearing(request, token)

    def _remedy(self, response: httpx.Response, token: str, tried: set[str]) -> str:
        """A new token for the refused request, or the error when that remedy was tried."""
        challenge = parse_challenge(response.headers.get("www-authenticate"))
        remedy = "step-up" if challenge.error == STEP_UP else "renewal"
        if remedy in tried:
            raise self._refused(remedy, challenge, response)
        tried.add(remedy)
        if remedy == "step-up":
            return self.tokens.step_up(self.audience, token, challenge, command=self.command)
        return self.tokens.access_token(self.audience, reject=token)

    def _refused(self, remedy: str, challenge: Challenge, response: httpx.Response) -> ClientError:
        body = json_body(response)
        if remedy == "step-up":
            return StepUpRequired(
                challenge.description or f"{self.command} needs a recent second factor.",
                max_age=challenge.max_age,
                acr_values=challenge.acr_values,
                hint="The new sign-in did not bring a recent second factor: the account may "
                "have none registered, or the authority did not ask for it. Register an "
                "authenticator app, or sign out and sign in again with the browser or "
                "terminal method.",
                status=401,
                problem=body,
            )
        why = challenge.description or (body or {}).get("detail") or "invalid token"
        return SignInRequired(
            f"{self.service} refused the renewed token: {why}",
            hint="Sign in again.",
            status=401,
            problem=body,
        )


def _bearing(request: httpx.Request, token: str) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {token}"
    return request
