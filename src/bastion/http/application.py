"""What every answer passes through: request ids, logs, headers, and the error answers
(problem details, OAuth errors, pages)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.audit import events
from bastion.audit.events import RequestContext, current_request
from bastion.authority.parts import Authority
from bastion.core.errors import BastionError, MethodNotAllowed, NotFound, UsageError
from bastion.core.secrets_at_rest import random_token
from bastion.directory.tenants import find_tenant
from bastion.http.endpoint_support import oauth_error, problem, render

log = logging.getLogger("bastion.http")
STATIC = Path(__file__).parent / "static"


class RequestMiddleware:
    """Gives every request an id, logs it once, and adds the headers every answer needs."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = random_token(12)
        client = scope.get("client")
        source = client[0] if client else None
        user_agent = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"user-agent"), None
        )
        token = current_request.set(RequestContext(request_id, source, user_agent))
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                if self.https:
                    headers.append(
                        (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
                    )
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            current_request.reset(token)
            log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "source": source,
                    }
                },
            )


def _wants_oauth(request: Request) -> bool:
    return "/oauth2/" in request.scope["path"] and request.method == "POST"


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def on_bastion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BastionError)
    if _wants_oauth(request):
        return oauth_error(exc)
    if _wants_html(request):
        return render(
            "message.html",
            {"title": exc.title, "message": exc.detail, "hint": exc.hint, "tenant": None},
            status=exc.status,
        )
    return problem(exc, request.scope["path"])


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: BastionError
    if exc.status_code == 404:
        error = NotFound("There is nothing at this address.")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = MethodNotAllowed(
            f"{request.method} is not allowed here.",
            hint=f"Allowed: {allowed}." if allowed else None,
        )
    else:
        error = UsageError(str(exc.detail))
    response = await on_bastion_error(request, error)
    response.status_code = exc.status_code
    # RFC 9110 section 15.5.6: a 405 names the methods the resource allows.
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def on_crash(request: Request, exc: Exception) -> Response:
    """X6: a crash is logged with its trace; the answer carries none. L1: outside the
    command plane (which records its own with the caller), a crash on a tenant's address
    leaves an audit record, at most one per source and minute."""
    log.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
    await run_in_threadpool(_record_crash, request)
    error = BastionError(
        "Something went wrong on the server.",
        hint="Try again; if it persists, give the administrator the X-Request-Id of this answer.",
    )
    return await on_bastion_error(request, error)


_TENANT_PATH = re.compile(r"^/t/([^/]+)/")


def _record_crash(request: Request) -> None:
    match = _TENANT_PATH.match(request.scope["path"])
    auth: Authority | None = getattr(request.app.state, "authority", None)
    if match is None or auth is None:
        return
    name = match.group(1)
    try:
        now = auth.now()
        with auth.store.begin() as conn:
            tenant = auth.tenants.get(name, lambda: find_tenant(conn, name))
            if tenant is None:
                return
            ctx = current_request.get()
            repeats = auth.crash_records.due(tenant.id, ctx.source if ctx else None, now)
            if repeats is None:
                return
            events.record(
                conn,
                tenant_id=tenant.id,
                type="server_error",
                outcome="failure",
                now=now,
                method=request.method,
                path=request.scope["path"],
                repeats=repeats,
            )
    except Exception:
        # The answer to a crash must not depend on the store that may have caused it.
        log.exception("the audit record of a server error could not be written")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})
