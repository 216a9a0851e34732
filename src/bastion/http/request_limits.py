"""What every request passes before any route sees it: the host it names and its body's size.

Host (RFC 9110 section 7.4, 15.5.20). Issuers, discovery and audiences are built from the
base URL; without a configured one, from the request's own scheme and ``Host``. So a request
naming another host is answered ``421 Misdirected Request``, never served:

- with a base URL configured, ``Host`` must name its host and port;
- without one, only a loopback name (``localhost``, ``127.0.0.0/8``, ``[::1]``) on the port
  this server is bound to is answered (``bastion serve`` off loopback needs the base URL).

Body size. Each route has a limit (:func:`body_limit`); a body declared larger by
``Content-Length`` is refused with ``413`` before any of it is read, and a streamed
(chunked) body is counted as it arrives and refused as soon as it passes the limit. Both
happen before authentication, so an anonymous client cannot make the server hold a large
body in memory. The 413 closes the connection: the rest of the body is never read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.config import is_loopback_host
from bastion.core.errors import BastionError, MisdirectedRequest, PayloadTooLarge

#: a sign-in, MFA, enrolment or device page's form
FORM_LIMIT = 16 * 1024
#: the OAuth endpoints (token, device authorization, revocation, introspection, challenge)
TOKEN_LIMIT = 64 * 1024
#: a command's JSON parameters
COMMAND_LIMIT = 256 * 1024

_OAUTH = re.compile(r"^/t/[^/]+/oauth2/")
_COMMAND = re.compile(r"^/api/[^/]+/commands/")

ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]


def body_limit(path: str) -> int:
    """The largest body, in bytes, the route at ``path`` accepts."""
    if _COMMAND.match(path):
        return COMMAND_LIMIT
    if _OAUTH.match(path):
        return TOKEN_LIMIT
    return FORM_LIMIT


@functools.lru_cache(maxsize=256)
def split_host(value: str, scheme: str) -> tuple[str, int] | None:
    """(lower-case host name, port) of a ``Host`` header value, or None if malformed. The
    value is parsed as given: whitespace or control characters make it malformed. Every
    request asks this of the same few values, so the answers are kept (a bounded cache of a
    pure function: a flood of odd names only evicts)."""
    if not value or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    try:
        parts = urlsplit(f"{scheme}://{value}")
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or parts.path or parts.query or parts.fragment or parts.username:
        return None
    default = 443 if scheme in ("https", "wss") else 80
    return parts.hostname.lower(), port if port is not None else default


class EdgeMiddleware:
    """The host check and the body limit, around the whole application."""

    def __init__(self, app: ASGIApp, *, base_url: str | None, render: ErrorRenderer) -> None:
        self.app = app
        self.render = render
        self.expected: tuple[str, int] | None = None
        self.expected_scheme = "http"
        if base_url:
            parts = urlsplit(base_url)
            self.expected = split_host(parts.netloc, parts.scheme)
            self.expected_scheme = parts.scheme

    def host_allowed(self, scope: Scope) -> bool:
        value = _header(scope, b"host")
        if value is None:
            # HTTP/1.0 without Host: nothing is taken from a name that was not sent.
            return self.expected is not None
        if self.expected is not None:
            # A Host without a port means the base URL's default one: behind a TLS proxy
            # the request itself may arrive over plain HTTP.
            return split_host(value, self.expected_scheme) == self.expected
        named = split_host(value, scope.get("scheme", "http"))
        if named is None:
            return False
        server = scope.get("server")
        # ASGI leaves the port out when it is the scheme's default one
        default = 443 if scope.get("scheme") in ("https", "wss") else 80
        bound_port = server[1] if server and server[1] is not None else default
        return is_loopback_host(named[0]) and named[1] == bound_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.host_allowed(scope):
            await self._refuse(
                scope,
                receive,
                send,
                MisdirectedRequest(
                    "this server does not answer for the host this request names.",
                    hint="Use the server's configured base URL.",
                ),
            )
            return
        limit = body_limit(scope["path"])
        too_large = PayloadTooLarge(
            f"the body is larger than this address accepts ({limit} bytes).",
            limit=limit,
        )
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, too_large)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route, where the app's error handlers answer in the
                    # route's own format (OAuth error, problem details, page).
                    raise too_large
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 413:
                # The rest of the body is not read: the connection cannot carry another.
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, counted, closing)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: BastionError) -> None:
        response = await self.render(Request(scope), exc)
        if exc.status == 413:
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
