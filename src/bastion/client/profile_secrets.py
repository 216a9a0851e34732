"""A profile's secrets at rest: its proxy's password, sealed apart from its tokens (S8).

``profiles.json`` keeps what a person may read back (the URL, the tenant, the proxy's
host and user name); the proxy's password goes to ``{config_dir}/secrets/{profile}.json``,
sealed with AES-256-GCM under a key of its own (``keystore.KeyStore`` with the purpose
``profile-secrets``: the OS keyring, else ``keys/profile-secrets/{profile}.key``, 0600).
The key is not the token cache's, so ``disconnect`` (which wipes the tokens and their key)
leaves the password be; removing the profile wipes both.

A password that cannot be unsealed (its key lost, the file altered) is dropped with a
warning: the proxy then answers 407, and the message says to give ``--proxy`` again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bastion.client import files
from bastion.client.keystore import KeyStore, KeyUnavailable, Storage, seal, unseal

log = logging.getLogger("bastion.client")

FORMAT = 1
PURPOSE = "profile-secrets"
#: the marker left in profiles.json where a proxy password was sealed away
SEALED = "proxy_password_sealed"


def split_password(url: str) -> tuple[str, str | None]:
    """``http://user:pw@host:port`` -> (``http://user@host:port``, ``pw``), the password as
    it appears in the URL (percent-encoded, if it was)."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url, None
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), password


def join_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


class ProfileSecrets:
    """The sealed secrets of one profile."""

    def __init__(self, config_dir: Path, name: str) -> None:
        self.path = config_dir / "secrets" / f"{name}.json"
        self.keys = KeyStore(config_dir, name, purpose=PURPOSE)
        self.name = name

    def _aad(self) -> bytes:
        return f"bastion-{PURPOSE}:{FORMAT}:{self.name}".encode()

    def load(self) -> dict[str, str]:
        from cryptography.exceptions import InvalidTag

        raw = files.read_bytes(self.path)
        if raw is None:
            return {}
        try:
            header = json.loads(raw)
            key = self.keys.load(header["key"])
            plain = unseal(header, key, self._aad())
            values = json.loads(plain)
        except (KeyUnavailable, InvalidTag, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "The secrets of profile %s could not be read (%s); give --proxy again.",
                self.name,
                exc,
            )
            return {}
        return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}

    def save(self, values: dict[str, Any]) -> None:

        if not values:
            self.wipe()
            return
        storage: Storage
        try:
            header = json.loads(files.read_bytes(self.path) or b"{}")
            storage = header["key"]
            key = self.keys.load(storage)
        except (KeyUnavailable, KeyError, TypeError, ValueError):
            storage, key = self.keys.create()
        plain = json.dumps(values).encode()
        files.write_private(self.path, seal(storage, key, plain, self._aad(), version=FORMAT))

    def wipe(self) -> None:
        if files.read_bytes(self.path) is not None:
            self.keys.delete()
        files.remove(self.path)


def seal_body(config_dir: Path, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The profile as it is written to profiles.json: a proxy password found in it is
    sealed away (this also moves one that an older version kept in plain text)."""
    proxy = body.get("proxy")
    if not isinstance(proxy, str):
        return body
    bare, password = split_password(proxy)
    if password is None:
        return body
    ProfileSecrets(config_dir, name).save({"proxy_password": password})
    return {**body, "proxy": bare, SEALED: True}


def open_body(config_dir: Path, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The profile as read from profiles.json, with its proxy password back in place."""
    proxy = body.get("proxy")
    if not body.get(SEALED) or not isinstance(proxy, str):
        return body
    password = ProfileSecrets(config_dir, name).load().get("proxy_password")
    return {**body, "proxy": join_password(proxy, password) if password else proxy}
