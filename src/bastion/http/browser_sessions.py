"""The browser's side of a sign-in: an opaque cookie naming a server-side record.

The cookie holds 256 random bits and nothing else (S3, S4); the server keeps only its keyed
hash. Each authentication step replaces the cookie with a new one, so a value seen before a
sign-in or a step-up is worthless after it. The anti-CSRF token of every form is a keyed
hash of the cookie, so it is bound to this browser's session and changes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from starlette.requests import Request

from bastion.authority.parts import Authority
from bastion.core.errors import BastionError
from bastion.core.secrets_at_rest import constant_time_equals, random_token
from bastion.directory.tenants import Tenant
from bastion.store.schema import web_sessions

#: how long an unfinished sign-in page flow lasts
FLOW_LIFETIME = 1800
_COOKIE_PURPOSE = "web-session"
_CSRF_PURPOSE = "csrf"


class CsrfFailed(BastionError):
    status = 403
    problem = "csrf"
    title = "Form expired"


def cookie_name(tenant: Tenant) -> str:
    return f"__Host-bastion-{tenant.name}"


@dataclass(frozen=True)
class WebSession:
    cookie: str
    tenant_id: str
    stage: str
    user_id: str | None
    session_id: str | None
    continuation: dict[str, Any] | None
    pending_secret: bytes | None
    expires_at: float


def load(
    auth: Authority, conn: Connection, tenant: Tenant, request: Request, now: float
) -> WebSession | None:
    cookie = request.cookies.get(cookie_name(tenant))
    if not cookie or len(cookie) > 200:
        return None
    row = conn.execute(
        select(web_sessions).where(
            web_sessions.c.cookie_hash == auth.keyring.lookup_hash(_COOKIE_PURPOSE, cookie),
            web_sessions.c.tenant_id == tenant.id,
        )
    ).first()
    if row is None or now > row.expires_at:
        return None
    return WebSession(
        cookie=cookie,
        tenant_id=row.tenant_id,
        stage=row.stage,
        user_id=row.user_id,
        session_id=row.session_id,
        continuation=row.continuation,
        pending_secret=row.pending_secret,
        expires_at=row.expires_at,
    )


def save(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    now: float,
    *,
    previous: WebSession | None = None,
    lifetime: float = FLOW_LIFETIME,
    **changes: Any,
) -> WebSession:
    """Store a web session under a brand-new cookie, retiring the previous one."""
    if previous is not None:
        conn.execute(
            delete(web_sessions).where(
                web_sessions.c.cookie_hash
                == auth.keyring.lookup_hash(_COOKIE_PURPOSE, previous.cookie)
            )
        )
        base = previous
    else:
        base = WebSession(
            cookie="",
            tenant_id=tenant.id,
            stage="anonymous",
            user_id=None,
            session_id=None,
            continuation=None,
            pending_secret=None,
            expires_at=0,
        )
    ws = replace(base, cookie=random_token(32), expires_at=now + lifetime, **changes)
    conn.execute(
        insert(web_sessions).values(
            cookie_hash=auth.keyring.lookup_hash(_COOKIE_PURPOSE, ws.cookie),
            tenant_id=tenant.id,
            stage=ws.stage,
            user_id=ws.user_id,
            session_id=ws.session_id,
            continuation=ws.continuation,
            pending_secret=ws.pending_secret,
            created_at=now,
            expires_at=ws.expires_at,
        )
    )
    return ws


def start_over(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    now: float,
    *,
    previous: WebSession | None,
    continuation: dict[str, Any] | None,
) -> WebSession:
    """A signed-out page flow under a new cookie, continuing to ``continuation``."""
    return save(
        auth,
        conn,
        tenant,
        now,
        previous=previous,
        stage="anonymous",
        user_id=None,
        session_id=None,
        continuation=continuation,
    )


def end(auth: Authority, conn: Connection, ws: WebSession) -> None:
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.cookie_hash == auth.keyring.lookup_hash(_COOKIE_PURPOSE, ws.cookie)
        )
    )


def csrf_token(auth: Authority, ws: WebSession) -> str:
    return auth.keyring.lookup_hash(_CSRF_PURPOSE, ws.cookie)


def check_csrf(auth: Authority, ws: WebSession | None, form: dict[str, Any]) -> WebSession:
    if ws is None:
        raise CsrfFailed(
            "This sign-in page has expired.", hint="Go back to the application and start again."
        )
    sent = str(form.get("csrf", ""))
    if not sent or not constant_time_equals(sent, csrf_token(auth, ws)):
        raise CsrfFailed("This form is no longer valid.", hint="Reload the page and try again.")
    return ws


def set_continuation(
    auth: Authority, conn: Connection, ws: WebSession, continuation: dict[str, Any] | None
) -> WebSession:
    """Change where the flow continues, without a new cookie (no authentication happened)."""
    _update(auth, conn, ws, continuation=continuation)
    return replace(ws, continuation=continuation)


def set_pending_secret(
    auth: Authority, conn: Connection, ws: WebSession, sealed: bytes
) -> WebSession:
    """Remember the TOTP seed being registered, sealed, until the first code confirms it."""
    _update(auth, conn, ws, pending_secret=sealed)
    return replace(ws, pending_secret=sealed)


def _update(auth: Authority, conn: Connection, ws: WebSession, **values: Any) -> None:
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.cookie_hash == auth.keyring.lookup_hash(_COOKIE_PURPOSE, ws.cookie))
        .values(**values)
    )
