"""A minimal browser for the sign-in pages: follows forms, keeps cookies, reads CSRF tokens.

httpx's cookie jar (like Python's http.cookiejar) never sends a ``Secure`` cookie over plain
HTTP, while real browsers do for ``127.0.0.1``; this one keeps cookies itself, as Chromium
does for loopback.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urljoin

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    def __init__(self, base_url: str, **client: Any) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30, **client)
        self.cookies: dict[str, str] = {}
        self.last: httpx.Response | None = None
        self.set_cookie_headers: list[str] = []

    def close(self) -> None:
        self.client.close()

    def _store_cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            self.set_cookie_headers.append(header)
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value.strip('"')

    def request(
        self, method: str, url: str, *, follow: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers.setdefault("accept", "text/html")
        for _ in range(10):
            if self.cookies:
                headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            response = self.client.request(method, url, headers=headers, **kwargs)
            self._store_cookies(response)
            self.last = response
            if not follow or response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers["location"]
            if not location.startswith(("/", self.base_url)):
                return response  # leaving the authority (a client's redirect URI)
            url = urljoin(str(response.url), location)
            method, kwargs = "GET", {}
        raise AssertionError("too many redirects")

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def csrf(self) -> str:
        assert self.last is not None
        match = CSRF.search(self.last.text)
        assert match, f"no CSRF token on {self.last.url}: {self.last.text[:500]}"
        return html.unescape(match.group(1))

    def submit(self, action: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        """POST a form of the current page, with its CSRF token."""
        return self.request("POST", action, data={"csrf": self.csrf(), **data}, **kwargs)


def page_error(response: httpx.Response) -> str:
    match = re.search(r'role="alert"><strong>([^<]+)</strong>', response.text)
    return html.unescape(match.group(1)) if match else ""
