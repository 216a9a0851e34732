"""Sign-in methods: one module per standard, one entry point for all.

=========  =======================================================  =====================
method     how                                                      standard
=========  =======================================================  =====================
browser    the system browser, a loopback redirect, PKCE S256       RFC 6749 4.1, 7636,
                                                                    8252, 9207
device     a code and a link shown here, approved on any device     RFC 8628
terminal   password then one-time code, typed here                  OAuth first-party
                                                                    apps (draft)
token      an access token given by the caller; never renewed       RFC 6750
auto       browser where there is a display, else device
=========  =======================================================  =====================

A step-up (RFC 9470) is the same sign-in with ``max_age`` and ``acr_values``: the authority,
which still knows the sign-in session, asks only for the second factor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bastion.client.discovery import Discovery
from bastion.client.errors import ConfigError, UsageError
from bastion.client.http import Http
from bastion.client.oauth import TokenSet
from bastion.client.prompt import Prompt, has_display

Method = Literal["auto", "browser", "device", "terminal", "token"]
METHODS: tuple[str, ...] = ("auto", "browser", "device", "terminal", "token")

#: how long a sign-in waits for the person (browser) at most
WAIT_FOR_PERSON = 600.0


@dataclass(frozen=True)
class SignInRequest:
    """What a sign-in asks for: a token for ``resource``, and for a step-up the RFC 9470
    ``max_age`` and ``acr_values`` the service named."""

    resource: str | None = None
    max_age: int | None = None
    acr_values: str | None = None
    username: str | None = None
    #: the first-party apps draft's session handle, for a step-up in the terminal
    auth_session: str | None = None
    #: the command a step-up is for (``Remove-Mailbox``), to say why the person is asked
    command: str | None = None
    #: the authority's ``known_client`` from an earlier terminal sign-in (decision 0019)
    known_client: str | None = None

    @property
    def step_up(self) -> bool:
        return self.max_age is not None or bool(self.acr_values)

    def why(self, issuer: str) -> str:
        """Why the person is asked, e.g. "Confirm with your second factor to run
        Remove-Mailbox", or "Sign in to https://…/t/contoso"."""
        if self.step_up:
            return "Confirm with your second factor" + (
                f" to run {self.command}" if self.command else ""
            )
        return f"Sign in to {issuer}"


@dataclass
class FlowContext:
    http: Http
    discovery: Discovery
    prompt: Prompt
    can_type: bool
    sleep: Callable[[float], None] = field(default_factory=lambda: time.sleep)
    wait: float = WAIT_FOR_PERSON


def check_method(method: str) -> Method:
    if method not in METHODS:
        raise ConfigError(
            f"'{method}' is not a sign-in method.",
            hint=f"Use one of: {', '.join(METHODS)}.",
        )
    return method  # type: ignore[return-value]


def effective_method(method: Method, *, can_type: bool) -> Method:
    """The method a sign-in really uses: ``auto`` becomes browser or device, and the terminal
    method, which needs typed answers, gives way to the device code where nothing can be
    typed."""
    if method == "auto":
        return "browser" if has_display() else "device"
    if method == "terminal" and not can_type:
        return "device"
    return method


def run(method: Method, ctx: FlowContext, request: SignInRequest) -> TokenSet:
    """Sign in (or step up) with ``method``, which is neither ``auto`` nor ``token``."""
    if method == "browser":
        from bastion.client.signin import browser

        return browser.sign_in(ctx, request)
    if method == "device":
        from bastion.client.signin import device

        return device.sign_in(ctx, request)
    if method == "terminal":
        from bastion.client.signin import terminal

        try:
            return terminal.sign_in(ctx, request)
        except terminal.RedirectToWeb as redirect:
            fallback: Method = "browser" if has_display() else "device"
            ctx.prompt.show(f"{redirect} Continuing with the {fallback} sign-in.")
            return run(fallback, ctx, request)
    raise UsageError(f"the '{method}' method cannot sign in by itself.")
