"""The loopback redirect listener of a native app, RFC 8252 sections 7.3 and 8.3.

It listens on ``127.0.0.1`` (never ``localhost``, never all interfaces) on a port the system
chooses, for one authorization response at ``/callback`` carrying the expected ``state``.
Requests with another path or state are answered and otherwise ignored, so a stray or
hostile request to the port cannot end the sign-in.
"""

from __future__ import annotations

import html
import secrets
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

PATH = "/callback"

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Bastion</title></head><body style="font-family: sans-serif; margin: 3em">
<h1>{title}</h1><p>{message}</p></body></html>"""


class Loopback:
    """``with Loopback(state) as listener: ... listener.wait(timeout)``."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.answer: dict[str, str] | None = None
        self._done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="bastion-loopback",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self, timeout: float) -> dict[str, str] | None:
        """The authorization response's parameters, or None after ``timeout`` seconds."""
        self._done.wait(timeout)
        return self.answer

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        state = params.get("state", "")
        if (
            parts.path != PATH
            or self._done.is_set()
            or not secrets.compare_digest(state.encode(), self.state.encode())
        ):
            self._reply(request, 404, "Not found", "This is not a sign-in response.")
            return
        if "error" in params:
            self._reply(
                request,
                200,
                "Sign-in did not complete",
                params.get("error_description") or params["error"],
            )
        else:
            self._reply(
                request,
                200,
                "You are signed in",
                "You can close this window and go back to where you started the sign-in.",
            )
        self.answer = params
        self._done.set()

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, title: str, message: str) -> None:
        body = _PAGE.format(title=html.escape(title), message=html.escape(message)).encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(body)
