"""Authenticate: a bearer token (RFC 6750 section 2.1), validated locally from its tenant's
keys (T8, R2), and the sign-in it came from still standing (decision 0020).

A refusal is a 401 with ``WWW-Authenticate`` (RFC 6750 section 3). It is recorded once per
tenant, source and minute (``bastion.audit.refusals``): a caller without a valid token has
no identity to record a refusal against, and a flood of them must not flood the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from bastion.audit import events
from bastion.audit.events import current_request
from bastion.authority.application_tokens import check_application_token, is_application_token
from bastion.authority.parts import Authority
from bastion.authority.sign_in_sessions import ended_sign_in
from bastion.authority.token_validation import KeyLookup, unverified_claim, validate_access_token
from bastion.core.errors import InvalidToken
from bastion.directory.role_groups import grants_of, grants_of_application
from bastion.directory.tenants import Tenant, find_tenant
from bastion.plane.call import Call, Incoming
from bastion.plane.command_context import Caller


def authenticate(call: Call) -> None:
    """The caller, or a 401 that is audited once per source and minute (L1)."""
    with call.reading() as conn:
        try:
            call.signed_in = caller_of(call.auth, call.incoming, conn, now=call.now)
        except InvalidToken as exc:
            _record_refusal(call, conn, exc)
            raise


def caller_of(auth: Authority, incoming: Incoming, conn: Connection, *, now: float) -> Caller:
    """T8 and R2: the token's tenant is its issuer; its keys come from that tenant only.

    In the combined server the issuers are this server's own and their keys are read from
    the database; in a process serving services alone (docs/decisions/0010) the issuers are
    the configured authority's and their keys are the JWKS it publishes."""
    token = bearer(incoming.authorization)
    issuer = unverified_claim(token, "iss")
    tenant = _tenant_named_by(auth, incoming, conn, issuer)
    if tenant is None:
        raise InvalidToken("The token was issued by an unknown issuer.")
    claims = validate_access_token(
        token,
        issuer=issuer,
        audience=f"{incoming.base_url}/api/{incoming.service}",
        keys=_key_lookup(auth, conn, tenant, issuer, incoming),
        now=now,
        verified=auth.verified_tokens,
    )
    if is_application_token(claims):
        return _application_caller(conn, tenant, issuer, claims)
    ended = ended_sign_in(
        conn,
        tenant_id=tenant.id,
        user_id=str(claims["sub"]),
        session_id=str(claims.get("sid", "")),
        issued_at=float(claims.get("iat", 0)),
    )
    if ended:
        raise InvalidToken(ended, hint="Sign in again.")
    return Caller(
        tenant=tenant,
        issuer=issuer,
        subject=claims["sub"],
        name=str(claims.get("preferred_username", "")),
        client_id=str(claims.get("client_id", "")),
        session_id=str(claims.get("sid", "")),
        amr=tuple(claims.get("amr", [])),
        acr=str(claims.get("acr", "")),
        auth_time=float(claims.get("auth_time", 0)),
        grants=grants_of(conn, claims["sub"]),
    )


def _application_caller(
    conn: Connection, tenant: Tenant, issuer: str, claims: dict[str, Any]
) -> Caller:
    """An application's token (client credentials): the application must still exist, be
    enabled, not have ended its tokens since, and the request come from its networks
    (``check_application_token``). It holds the roles of the role groups it is in."""
    ctx = current_request.get()
    app = check_application_token(conn, tenant, claims, ctx.source if ctx else None)
    return Caller(
        tenant=tenant,
        issuer=issuer,
        subject=app.id,
        name=app.display_name,
        client_id=app.app_id,
        session_id="",
        amr=(),
        acr="",
        auth_time=0.0,
        grants=grants_of_application(conn, app.id),
        kind="app",
    )


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 section 2.1)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("This command needs an access token.", missing=True)
    return token.strip()


def _tenant_named_by(
    auth: Authority, incoming: Incoming, conn: Connection, issuer: str
) -> Tenant | None:
    """The tenant of this server whose issuer ``issuer`` is (unverified until its keys
    check the token)."""
    remote = incoming.remote
    prefix = remote.issuer_prefix if remote is not None else f"{incoming.base_url}/t/"
    name = issuer[len(prefix) :] if issuer.startswith(prefix) else ""
    if not name:
        return None
    return auth.tenants.get(name, lambda: find_tenant(conn, name))


def _key_lookup(
    auth: Authority, conn: Connection, tenant: Tenant, issuer: str, incoming: Incoming
) -> KeyLookup:
    remote = incoming.remote
    if remote is None:
        return lambda refresh: auth.keys.public_keys(conn, tenant.id, refresh=refresh)
    # Fetched, and fetched again for an unknown kid, before this transaction began.
    return lambda refresh: remote.keys(issuer)


def _record_refusal(call: Call, conn: Connection, exc: InvalidToken) -> None:
    """Record a 401 against the tenant a (possibly forged) token names, at most once per
    source and minute; the later ones are counted in the next record's ``repeats``."""
    try:
        issuer = unverified_claim(bearer(call.incoming.authorization), "iss")
    except InvalidToken:
        return
    tenant = _tenant_named_by(call.auth, call.incoming, conn, issuer)
    if tenant is None:
        return
    ctx = current_request.get()
    repeats = call.auth.anonymous_refusals.due(tenant.id, ctx.source if ctx else None, call.now)
    if repeats is None:
        return
    spec = call.spec
    with call.auth.store.begin() as writer:
        events.record(
            writer,
            tenant_id=tenant.id,
            type="command.unauthenticated",
            outcome="denied",
            now=call.now,
            service=spec.service,
            command=spec.name,
            error=exc.problem,
            reason=exc.detail,
            repeats=repeats,
        )
