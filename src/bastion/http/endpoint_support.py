"""Helpers every endpoint shares: the tenant of a URL, its issuer, responses, errors."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from bastion.authority.clients import Client, authenticate_client
from bastion.authority.parts import Authority
from bastion.core import json_codec
from bastion.core.errors import BastionError, InvalidRequest
from bastion.directory.tenants import Tenant, find_tenant, get_tenant

TEMPLATES = Path(__file__).parent / "templates"

#: Pages never framed by another origin (X2) and never cached (they carry CSRF tokens).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
#: an origin as CSP may name it: nothing that could end the directive or add another
_ORIGIN = re.compile(r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def origin_of(uri: str) -> str | None:
    """The origin (scheme, host, port) of an http(s) URI, or None."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _ORIGIN.fullmatch(origin) else None


def page_headers(form_target: str | None = None) -> dict[str, str]:
    """The page headers; ``form_target`` is the one other origin a form of the page may end
    at: a successful sign-in POST is answered with a 303 to the client's redirect URI, and
    browsers apply ``form-action`` to every redirect of a form submission (Chromium blocks
    it otherwise). Paths are not named: CSP ignores them after a redirect."""
    headers = dict(PAGE_HEADERS)
    origin = origin_of(form_target) if form_target else None
    if origin is not None:
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
    return headers


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class FastJSONResponse(JSONResponse):
    """A JSON answer serialized by :mod:`bastion.core.json_codec`: the same compact UTF-8
    JSON as Starlette's, in a fraction of the time."""

    def render(self, content: Any) -> bytes:
        return json_codec.dumps(content)


#: a form larger than this is refused before it is parsed
MAX_FORM_BYTES = 64 * 1024


def authority_of(request: Request) -> Authority:
    auth: Authority = request.app.state.authority
    return auth


def base_url(request: Request) -> str:
    configured = authority_of(request).settings.base_url
    if configured:
        return configured
    return f"{request.url.scheme}://{request.url.netloc}"


def issuer_of(request: Request, tenant: Tenant) -> str:
    return f"{base_url(request)}/t/{tenant.name}"


def load_tenant(conn: Connection, request: Request) -> Tenant:
    name = request.path_params["tenant"]
    tenant = authority_of(request).tenants.get(name, lambda: find_tenant(conn, name))
    if tenant is None:
        get_tenant(conn, name)  # raises NotFound with its message
        raise AssertionError("unreachable")
    return tenant


def client_address(request: Request) -> str:
    """The socket peer; forwarded headers are honoured only from trusted proxies (X3)."""
    return request.client.host if request.client else "unknown"


@lru_cache(maxsize=1)
def _jinja() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def render(
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    cookie: tuple[str, str] | None = None,
    form_target: str | None = None,
) -> HTMLResponse:
    """A page; ``form_target`` as :func:`page_headers` takes it."""
    html = _jinja().get_template(name).render(**context)
    response = HTMLResponse(html, status_code=status, headers=page_headers(form_target))
    if cookie:
        set_session_cookie(response, *cookie)
    return response


def set_session_cookie(response: Response, name: str, value: str) -> None:
    """S4: ``__Host-`` prefix, Secure, HttpOnly, SameSite=Lax, Path=/, an opaque value."""
    response.set_cookie(name, value, path="/", secure=True, httponly=True, samesite="lax")


def oauth_error(exc: BastionError) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="bastion"'
    return JSONResponse(exc.oauth_body(), status_code=exc.status, headers=headers)


def problem(exc: BastionError, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        exc.problem_details(instance),
        status_code=exc.status,
        media_type="application/problem+json",
    )


async def read_form(request: Request) -> dict[str, Any]:
    """An x-www-form-urlencoded body as a dict; repeated ``resource`` kept as a list."""
    content_type = request.headers.get("content-type", "")
    if request.method != "POST":
        return {}
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise InvalidRequest("the body must be application/x-www-form-urlencoded.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequest(f"the body is larger than {MAX_FORM_BYTES} bytes.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the form body is malformed.") from exc
    data: dict[str, Any] = {}
    resources: list[str] = []
    for key, value in pairs:
        if key == "resource":
            resources.append(value)
        elif key in data and key not in ("device_code", "code"):
            raise InvalidRequest(f"parameter '{key}' was sent more than once.")
        data.setdefault(key, value)
    if resources:
        data["resource"] = resources[0]
    data["resource_list"] = resources
    return data


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        client_id, _, secret = decoded.partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the Authorization header is malformed.") from exc
    return unquote(client_id), unquote(secret)


def request_client(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    request: Request,
    form: dict[str, Any],
    *,
    require_secret: bool = False,
) -> Client:
    """The client a token-endpoint-style request names, authenticated (RFC 6749 section
    2.3): by HTTP Basic, or by ``client_id`` and ``client_secret`` in the form; a
    ``client_id`` in the form besides the Basic one must be the same."""
    basic = basic_credentials(request)
    secret: str | None
    if basic is not None:
        client_id, secret = basic
        if form.get("client_id") and form["client_id"] != client_id:
            raise InvalidRequest("client_id differs from the Authorization header.")
    else:
        client_id = str(form.get("client_id", ""))
        secret = str(form["client_secret"]) if form.get("client_secret") else None
    return authenticate_client(
        conn,
        auth.keyring,
        tenant.id,
        client_id=client_id,
        client_secret=secret,
        require_secret=require_secret,
        cache=auth.clients,
    )


def in_thread(
    fn: Callable[[Request, dict[str, Any]], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint whose work (database, Argon2) runs off the event loop."""

    async def endpoint(request: Request) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(fn, request, form)

    endpoint.__name__ = fn.__name__
    return endpoint
