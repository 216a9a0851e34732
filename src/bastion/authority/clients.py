"""Registered OAuth clients and redirect URI matching.

Redirect URIs match by exact string comparison (RFC 9700 section 4.1.3), with the one
exception RFC 8252 section 7.3 requires for native apps: a loopback redirect
(``http://127.0.0.1``, ``http://[::1]``, and ``http://localhost`` for MSAL's sake) matches a
registered loopback URI with any port, the rest of the URI still compared exactly.

Both are done on the string as given, never on a parsed and re-assembled one: Python's URL
parser drops leading spaces and removes tab, CR and LF anywhere, so a candidate such as
``" http://127.0.0.1/cb"`` or ``"http://127.0.0.1/c\r\nb"`` would otherwise match while the
redirect used the raw string. A URI with whitespace or a control character never matches and
is never registered (SECURITY.md T1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from bastion.authority.ttl_cache import TtlCache
from bastion.core.errors import InvalidClient, UsageError
from bastion.core.secrets_at_rest import Keyring, constant_time_equals
from bastion.core.text import has_control
from bastion.store.schema import clients

CLI_CLIENT_ID = "bastion-cli"

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
#: applications' grant (RFC 6749 section 4.4); never registered on a client of this table
GRANT_CLIENT_CREDENTIALS = "client_credentials"

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")

SECRET_PURPOSE = "client-secret"


@dataclass(frozen=True)
class Client:
    tenant_id: str
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    first_party: bool

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    def allows_grant(self, grant: str) -> bool:
        return grant in self.grant_types

    def redirect_uri_matches(self, candidate: str) -> bool:
        return any(redirect_uri_matches(r, candidate) for r in self.redirect_uris)


#: an ``http`` loopback URI, read from the raw string: host, optional port, the rest
_LOOPBACK = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\]|localhost)(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?].*)?",
    re.DOTALL,
)


def has_space_or_control(uri: str) -> bool:
    """Whitespace (any Unicode space) or a control character anywhere in ``uri``."""
    return any(ch.isspace() or not ch.isprintable() for ch in uri)


def _split_loopback(uri: str) -> tuple[str, str] | None:
    """(host, the rest after the port) of an ``http`` loopback URI, else None; the rest
    is the raw text, ``/`` when empty."""
    if has_space_or_control(uri):
        return None
    match = _LOOPBACK.fullmatch(uri)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return None
    rest = match["rest"] or ""
    return match["host"], rest if rest.startswith("/") else "/" + rest


def redirect_uri_matches(registered: str, candidate: str) -> bool:
    if has_space_or_control(candidate):
        return False
    if constant_time_equals(registered, candidate):
        return True
    reg = _split_loopback(registered)
    cand = _split_loopback(candidate)
    return reg is not None and cand is not None and reg == cand


def check_redirect_uri(uri: str) -> None:
    """Refuse a redirect URI at registration unless it is https or a loopback http URI."""
    if has_space_or_control(uri):
        raise UsageError(
            f"redirect URI {uri!r} holds whitespace or a control character.",
            hint="Register the URI exactly as the client will send it.",
        )
    parts = urlsplit(uri)
    if parts.fragment:
        raise UsageError(f"redirect URI '{uri}' has a fragment (RFC 6749 section 3.1.2).")
    if parts.scheme == "https" and parts.netloc:
        return
    if parts.scheme == "http" and _split_loopback(uri) is not None:
        return
    raise UsageError(
        f"redirect URI '{uri}' is refused.",
        hint="Use https, or http only on a loopback address (127.0.0.1, [::1]).",
    )


def _to_client(row: Any) -> Client:
    return Client(
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        name=row.name,
        secret_hash=row.secret_hash,
        redirect_uris=tuple(row.redirect_uris),
        grant_types=tuple(row.grant_types),
        first_party=row.first_party,
    )


def find_client(conn: Connection, tenant_id: str, client_id: str) -> Client | None:
    if has_control(client_id) or len(client_id) > 128:
        return None
    row = conn.execute(
        select(clients).where(clients.c.tenant_id == tenant_id, clients.c.client_id == client_id)
    ).first()
    return _to_client(row) if row else None


def authenticate_client(
    conn: Connection,
    keyring: Keyring,
    tenant_id: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    require_secret: bool = False,
    cache: TtlCache[tuple[str, str], Client] | None = None,
) -> Client:
    """RFC 6749 section 2.3: a public client names itself; a confidential one proves it."""
    if not client_id:
        raise InvalidClient("The request does not name a client.", hint="Send client_id.")
    name = client_id

    def load() -> Client | None:
        return find_client(conn, tenant_id, name)

    client = cache.get((tenant_id, client_id), load) if cache is not None else load()
    if client is None:
        raise InvalidClient(f"Client '{client_id}' is not registered in this tenant.")
    if client.secret_hash is None:
        if require_secret or client_secret:
            raise InvalidClient("This endpoint needs client authentication.")
        return client
    if not client_secret or not constant_time_equals(
        client.secret_hash, keyring.lookup_hash(SECRET_PURPOSE, client_secret)
    ):
        raise InvalidClient("Client authentication failed.")
    return client
