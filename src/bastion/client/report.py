"""Who is signed in, where, until when (``bastion.client.connection.status`` reads it from
the token cache alone)."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.client.cache import Account


@dataclass(frozen=True)
class Status:
    """Who is signed in, where, until when, and where the cache's key is."""

    profile: str | None
    url: str
    tenant: str
    issuer: str
    signed_in: bool
    account: Account | None
    method: str | None
    #: each audience's cached access token expiry (seconds since the epoch)
    access_expires: dict[str, float]
    #: when the sign-in itself ends, if the authority said so; else None
    session_expires_at: float | None
    key_storage: str
    cache_path: str
    #: the application signed in, when it is not a person
    app_id: str | None = None
