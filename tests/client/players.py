"""The person at the keyboard, played by a test: a :class:`~bastion.client.prompt.Prompt`
that answers the terminal's questions, approves device codes and follows the browser's URL
through the real sign-in pages with an HTTP client (cookies kept, as a browser keeps them,
so a step-up finds the sign-in session)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import httpx

from bastion.authority.factors import totp
from tests.support.browser import Browser
from tests.support.flows import Org, Person

DEVICE_CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")


class Player:
    def __init__(self, org: Org, user: Person | None = None) -> None:
        self.org = org
        self.user = user or org.admin
        self.browser = Browser(org.server.base_url)
        self.asked: list[str] = []
        self.shown: list[str] = []
        self.opened: list[str] = []
        #: the sign-in pages submitted, in order: "password", "code"
        self.submitted: list[str] = []
        #: changes the redirect back to the client before it is delivered
        self.tamper: Callable[[str], str] | None = None
        self._last_step = -1

    def close(self) -> None:
        self.browser.close()

    # -- the Prompt protocol -------------------------------------------------------------

    def ask(self, message: str, *, secret: bool = False) -> str:
        self.asked.append(message)
        if message.startswith("User name"):
            return self.user.username
        if message.startswith("Password"):
            return self.user.password
        if "code" in message:
            return self.code()
        raise AssertionError(f"unexpected question: {message}")

    def show(self, message: str) -> None:
        self.shown.append(message)
        match = DEVICE_CODE.search(message)
        if match:
            self.approve_device(match.group(1))

    def open_url(self, url: str) -> bool:
        self.opened.append(url)
        location = self.follow("GET", url)
        if self.tamper is not None:
            location = self.tamper(location)
        httpx.get(location, timeout=10)  # the browser lands on the loopback listener
        return True

    # -- playing the pages ----------------------------------------------------------------

    def code(self) -> str:
        """A TOTP code for a time step not used before (the authority refuses replays)."""
        server = self.org.server
        current = totp.step_at(server.now())
        if self._last_step >= current + totp.DRIFT_STEPS:
            server.advance(totp.PERIOD)
            current = totp.step_at(server.now())
        step = max(current, self._last_step + 1)
        self._last_step = step
        assert self.user.totp_secret is not None
        return totp.code_at(self.user.totp_secret, step * totp.PERIOD + 1)

    def follow(self, method: str, url: str, data: dict[str, str] | None = None) -> str:
        """Go through the authority's pages from ``url`` until it redirects elsewhere;
        returns that address."""
        server = urlsplit(self.org.server.base_url).netloc
        approved = False
        for _ in range(20):
            if data is None:
                response = self.browser.request(method, url, follow=False)
            else:
                response = self.browser.submit(url, data, follow=False)
            data = None
            if response.status_code in (302, 303):
                target = urljoin(str(response.url), response.headers["location"])
                if urlsplit(target).netloc != server:
                    return target
                method, url = "GET", target
                continue
            assert response.status_code == 200, (response.status_code, response.text[:500])
            path = urlsplit(str(response.url)).path
            if path.endswith("/login"):
                self.submitted.append("password")
                method, data = (
                    "POST",
                    {"username": self.user.username, "password": self.user.password},
                )
            elif path.endswith("/login/mfa"):
                self.submitted.append("code")
                method, data = "POST", {"code": self.code()}
            elif path.endswith("/device/confirm") and not approved:
                approved = True
                method, data = "POST", {"action": "approve"}
            else:
                return str(response.url)
            url = path
        raise AssertionError("too many pages")

    def approve_device(self, user_code: str) -> None:
        name = self.org.name
        self.browser.get(f"/t/{name}/device?user_code={user_code}")
        self.follow("POST", f"/t/{name}/device", {"user_code": user_code})
