"""Registering OAuth clients: for the grants of the token endpoint's table that registered
clients may use (``KNOWN_GRANTS``, derived from the table), with exact redirect URIs."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from bastion.authority.clients import (
    CLI_CLIENT_ID,
    LOOPBACK_HOSTS,
    SECRET_PURPOSE,
    check_redirect_uri,
    find_client,
)
from bastion.authority.grants.table import GRANTS
from bastion.core.errors import Conflict, UsageError
from bastion.core.secrets_at_rest import Keyring, random_token
from bastion.store.schema import clients, users

#: the grants a registered client may be registered for, in the table's order
KNOWN_GRANTS = tuple(name for name, grant in GRANTS.items() if grant.for_registered_clients)

CLI_REDIRECT_URIS = [
    f"http://{host}{path}" for host in LOOPBACK_HOSTS for path in ("/", "/callback")
]


def register_client(
    conn: Connection,
    keyring: Keyring,
    *,
    tenant_id: str,
    client_id: str,
    name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    confidential: bool,
    first_party: bool,
    now: float,
) -> str | None:
    """Register a client; returns its generated secret (shown once) if confidential."""
    if not client_id or len(client_id) > 128 or not client_id.isprintable():
        raise UsageError("client id must be 1-128 printable characters.")
    if find_client(conn, tenant_id, client_id) is not None:
        raise Conflict(f"client '{client_id}' already exists.")
    # R4: a client may never take an id that is also a user's subject.
    if conn.execute(select(users.c.id).where(users.c.id == client_id)).first():
        raise UsageError("a client id may not equal a user's id.")
    unknown = set(grant_types) - set(KNOWN_GRANTS)
    if unknown:
        raise UsageError(
            f"unknown grant type(s): {', '.join(sorted(unknown))}.",
            hint=f"Known: {', '.join(KNOWN_GRANTS)}. Implicit and password grants do not exist.",
        )
    for uri in redirect_uris:
        check_redirect_uri(uri)
    secret = random_token(32) if confidential else None
    conn.execute(
        insert(clients).values(
            tenant_id=tenant_id,
            client_id=client_id,
            name=name,
            secret_hash=keyring.lookup_hash(SECRET_PURPOSE, secret) if secret else None,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            first_party=first_party,
            created_at=now,
        )
    )
    return secret


def register_cli_client(conn: Connection, keyring: Keyring, tenant_id: str, now: float) -> None:
    register_client(
        conn,
        keyring,
        tenant_id=tenant_id,
        client_id=CLI_CLIENT_ID,
        name="Bastion command line",
        redirect_uris=CLI_REDIRECT_URIS,
        grant_types=list(KNOWN_GRANTS),
        confidential=False,
        first_party=True,
        now=now,
    )
