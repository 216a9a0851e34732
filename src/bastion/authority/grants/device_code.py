"""The device authorization grant, RFC 8628.

The device asks for a code (section 3.1), the person enters the user code on the
verification page and approves (section 3.3), and the device polls the token endpoint
(section 3.4) until it gets tokens or one of the errors of section 3.5.

A request may carry RFC 9470's ``max_age`` and ``acr_values`` (a client stepping up after a
service refused its token): they are kept with the code, and the approval page first asks
the approver's second factor again when the browser's sign-in is too old or too weak, so the
tokens carry a fresh ``auth_time`` and ``acr``.

User codes are 8 letters from :data:`USER_CODE_ALPHABET` (20^8, about 34.5 bits; section
6.1); wrong entries are limited per source and per person (see ``bastion.authority.limits``).
Device codes carry 256 bits from the CSPRNG and are stored only as keyed hashes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, insert, select, update

from bastion.authority.clients import GRANT_DEVICE_CODE, Client
from bastion.authority.grants.grant import Grant, TokenRequest
from bastion.authority.grants.issue import load_subject, token_response
from bastion.authority.parts import Authority
from bastion.authority.resources import ScopeRequest, parse_scope_request
from bastion.authority.sign_in_sessions import parse_step_up
from bastion.core.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
)
from bastion.core.secrets_at_rest import random_token
from bastion.directory.tenants import Tenant
from bastion.store.schema import device_codes

#: RFC 8628 section 6.1: consonants only, so no word can be spelled and none look alike
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP = 5
_PURPOSE = "device-code"


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def display_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """What a person typed, as stored: upper case, no dashes or spaces; None if malformed."""
    code = "".join(c for c in text.upper() if c not in "- ")
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def start(
    auth: Authority,
    conn: Connection,
    *,
    tenant: Tenant,
    client: Client,
    scope: str | None,
    resources: list[str],
    audiences: dict[str, str],
    verification_uri: str,
    now: float,
    max_age: object = None,
    acr_values: object = None,
) -> dict[str, Any]:
    """Section 3.1-3.2: the device authorization request and response."""
    DeviceCodeGrant().require_client(client)
    request = parse_scope_request(scope, resources, audiences)
    age, acr = parse_step_up(max_age, acr_values)
    device_code = random_token(32)
    policy = tenant.policy
    for _ in range(5):
        user_code = new_user_code()
        clash = conn.execute(
            select(device_codes.c.user_code).where(
                device_codes.c.tenant_id == tenant.id, device_codes.c.user_code == user_code
            )
        ).first()
        if clash is None:
            break
    conn.execute(
        insert(device_codes).values(
            device_code_hash=auth.keyring.lookup_hash(_PURPOSE, device_code),
            tenant_id=tenant.id,
            user_code=user_code,
            client_id=client.client_id,
            scopes=list(request.oidc_scopes),
            resource=request.audience,
            status="pending",
            session_id=None,
            interval=policy.device_poll_interval,
            last_poll_at=None,
            created_at=now,
            expires_at=now + policy.device_code_lifetime,
            max_age=age,
            acr_values=list(acr) if acr else None,
        )
    )
    shown = display_user_code(user_code)
    return {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={shown}",
        "expires_in": policy.device_code_lifetime,
        "interval": policy.device_poll_interval,
        "message": f"To sign in, open {verification_uri} and enter the code {shown}.",
    }


@dataclass(frozen=True)
class PendingDevice:
    """A device code awaiting the person's decision, as the verification page shows it."""

    device_code_hash: str
    user_code: str
    client_id: str
    expires_at: float
    #: the step-up the device asked for (RFC 9470), met at approval
    max_age: int | None = None
    acr_values: tuple[str, ...] = ()


def find_pending(
    conn: Connection, tenant: Tenant, user_code: str, now: float
) -> PendingDevice | None:
    """The pending request a person's typed user code names, if it has not expired."""
    return _pending(conn, tenant, device_codes.c.user_code == user_code, now)


def get_pending(
    conn: Connection, tenant: Tenant, code_hash: str, now: float
) -> PendingDevice | None:
    """The same, by the device code's keyed hash (kept in the person's web session)."""
    return _pending(conn, tenant, device_codes.c.device_code_hash == code_hash, now)


def _pending(
    conn: Connection, tenant: Tenant, which: ColumnElement[bool], now: float
) -> PendingDevice | None:
    row = conn.execute(
        select(device_codes).where(
            device_codes.c.tenant_id == tenant.id, which, device_codes.c.status == "pending"
        )
    ).first()
    if row is None or now > row.expires_at:
        return None
    return PendingDevice(
        row.device_code_hash,
        row.user_code,
        row.client_id,
        row.expires_at,
        max_age=row.max_age,
        acr_values=tuple(row.acr_values or ()),
    )


def decide(conn: Connection, code_hash: str, *, approve: bool, session_id: str | None) -> bool:
    """Section 3.3: the person approves or denies. False if the code is no longer pending."""
    result = conn.execute(
        update(device_codes)
        .where(device_codes.c.device_code_hash == code_hash, device_codes.c.status == "pending")
        .values(status="approved" if approve else "denied", session_id=session_id)
    )
    return result.rowcount == 1


class DeviceCodeGrant(Grant):
    """Sections 3.4-3.5: the device's token request."""

    grant_type = GRANT_DEVICE_CODE
    parameters = frozenset({"device_code"})
    refusal = "This client may not use the device authorization grant."

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        row = _take_approved(request)
        return token_response(
            request,
            subject=load_subject(request, row.session_id),
            scopes=ScopeRequest(oidc_scopes=tuple(row.scopes), audience=row.resource),
            family_id=random_token(24),
            signed_in=True,
        )


def _take_approved(request: TokenRequest) -> Row[Any]:
    """The device code's row once the person approved it, marked consumed; otherwise the
    error section 3.5 names (each poll is recorded for ``slow_down``)."""
    conn, now = request.conn, request.now
    code_hash = request.auth.keyring.lookup_hash(_PURPOSE, request.text("device_code"))
    row = conn.execute(
        select(device_codes).where(
            device_codes.c.device_code_hash == code_hash,
            device_codes.c.tenant_id == request.tenant.id,
        )
    ).first()
    if row is None or row.client_id != request.client.client_id:
        raise InvalidGrant("The device code is not valid.")
    if row.status == "consumed":
        raise InvalidGrant("The device code was already used.")
    if now > row.expires_at:
        raise ExpiredToken("The device code has expired.", hint="Start the sign-in again.")
    this_code = update(device_codes).where(device_codes.c.device_code_hash == code_hash)
    if row.last_poll_at is not None and now - row.last_poll_at < row.interval:
        conn.execute(this_code.values(interval=row.interval + SLOW_DOWN_STEP, last_poll_at=now))
        raise SlowDown(
            f"Polling too fast; wait at least {row.interval + SLOW_DOWN_STEP} seconds.",
            keep_changes=True,
        )
    conn.execute(this_code.values(last_poll_at=now))
    if row.status == "pending":
        raise AuthorizationPending(
            "The person has not approved the sign-in yet.", keep_changes=True
        )
    if row.status == "denied":
        raise AccessDenied("The person declined the sign-in.", keep_changes=True)
    conn.execute(this_code.values(status="consumed"))
    return row
