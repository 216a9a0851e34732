"""Who is signed in, where, until when: read from the token cache alone."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bastion.client import files
from bastion.client.cache import Account
from bastion.client.settings import resolve


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


def status(
    profile: str | None = None,
    *,
    url: str | None = None,
    tenant: str | None = None,
    config_dir: str | os.PathLike[str] | None = None,
) -> Status:
    """The sign-in of a profile (default: the current one), from the cache alone: no
    network, no prompt."""
    settings = resolve(files.config_dir_of(config_dir), url=url, tenant=tenant, profile=profile)
    from bastion.client.connection import Connection

    conn = Connection(settings, prompt=None, interactive=False)
    try:
        return conn.status()
    finally:
        conn.close()
