"""The token cache: one encrypted file per profile, shared safely between processes (S8, X4).

``{config_dir}/tokens/{slot}.json`` holds a small header (format version, where the key
is) and the state, sealed with AES-256-GCM (``cryptography``'s AESGCM) under a random 96-bit
nonce per write, with the slot name as associated data. The state is the refresh token, the
access token of each audience with its expiry, and the signed-in account. An application's
sign-in keeps its access tokens and its app ID only: never its private key, its certificate's
password or its federated token. Nothing in it is
ever written in plain text; a file that fails authentication (tampered, or its key lost) is
discarded and the person signs in again.

Read-modify-write happens under an exclusive lock on ``{slot}.lock``: a process renewing a
token re-reads the file under the lock, so when two renew at once the second finds the
first's fresh tokens instead of presenting a refresh token that was just rotated away.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bastion.client import files
from bastion.client.keystore import (
    KeyringUnreachable,
    KeyStore,
    KeyUnavailable,
    Storage,
    seal,
    unseal,
)

log = logging.getLogger("bastion.client")

FORMAT = 1


@dataclass
class Account:
    """Who is signed in, from the claims of the tokens the authority issued."""

    sub: str
    username: str
    tenant: str
    issuer: str
    auth_time: float
    acr: str
    amr: list[str] = field(default_factory=list)


@dataclass
class CachedToken:
    token: str
    expires_at: float
    lifetime: float

    def fresh(self, now: float) -> bool:
        """Usable without renewal: renewal starts 60 s before expiry, or 10 % of the
        lifetime before it for tokens that live under ten minutes."""
        margin = min(60.0, self.lifetime * 0.1)
        return now < self.expires_at - margin


@dataclass
class CacheState:
    issuer: str | None = None
    method: str | None = None
    refresh_token: str | None = None
    #: the first-party apps draft's ``auth_session``, for a step-up in the terminal
    auth_session: str | None = None
    access: dict[str, CachedToken] = field(default_factory=dict)
    account: Account | None = None
    #: when the sign-in itself ends, if the authority said so
    session_expires_at: float | None = None
    #: the authority's mark that this client signed the account in before (decision 0019);
    #: kept across sign-ins of the same issuer, like the account
    known_client: str | None = None
    #: the application these tokens are for (its app ID), or None for a person's sign-in:
    #: an application keeps access tokens only, never its key or a refresh token
    client_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheState:
        account = data.get("account")
        return cls(
            issuer=data.get("issuer"),
            method=data.get("method"),
            refresh_token=data.get("refresh_token"),
            auth_session=data.get("auth_session"),
            access={k: CachedToken(**v) for k, v in (data.get("access") or {}).items()},
            account=Account(**account) if isinstance(account, dict) else None,
            session_expires_at=data.get("session_expires_at"),
            known_client=data.get("known_client"),
            client_id=data.get("client_id"),
        )

    def for_issuer(self, issuer: str) -> CacheState:
        """This state if it belongs to ``issuer``, else an empty one (a profile that now
        points elsewhere never hands its tokens to another issuer)."""
        return self if self.issuer == issuer else CacheState(issuer=issuer)


class TokenCache:
    """The encrypted token cache of one slot (a profile) in ``config_dir``."""

    def __init__(self, config_dir: Path, slot: str) -> None:
        self.config_dir = config_dir
        self.slot = slot
        self.path = config_dir / "tokens" / f"{slot}.json"
        self.lock_path = config_dir / "tokens" / f"{slot}.lock"
        self.keys = KeyStore(config_dir, slot)

    @property
    def key_storage(self) -> str:
        """``"keyring"`` or ``"key file {path}"``: where this cache's key is (or would go)."""
        header = self._header()
        storage: Storage = header["key"] if header else self.keys.choose()
        return self.keys.describe(storage)

    def load(self) -> CacheState:
        """The current state (a consistent snapshot: files are replaced atomically)."""
        raw = files.read_bytes(self.path)
        if raw is None:
            return CacheState()
        try:
            return self._open(raw)
        except KeyringUnreachable:
            return CacheState()
        except (KeyUnavailable, ValueError) as exc:
            with files.exclusive_lock(self.lock_path):
                if files.read_bytes(self.path) == raw:
                    self._discard(str(exc))
            return CacheState()

    @contextmanager
    def transaction(self) -> Iterator[CacheState]:
        """Lock, read, let the caller change the state, write it back (if no exception)."""
        with files.exclusive_lock(self.lock_path):
            raw = files.read_bytes(self.path)
            state = CacheState()
            if raw is not None:
                try:
                    state = self._open(raw)
                except KeyringUnreachable:
                    pass  # a sign-in here replaces it, with a key this process can reach
                except (KeyUnavailable, ValueError) as exc:
                    self._discard(str(exc))
            before = json.dumps(state.to_json(), sort_keys=True)
            yield state
            if json.dumps(state.to_json(), sort_keys=True) != before:
                self._seal(state)

    def wipe(self) -> None:
        """Remove the cache and its key."""
        with files.exclusive_lock(self.lock_path):
            files.remove(self.path)
            self.keys.delete()
        files.remove(self.lock_path)

    # -- sealing ---------------------------------------------------------------------------

    def _aad(self) -> bytes:
        return f"bastion-token-cache:{FORMAT}:{self.slot}".encode()

    def _header(self) -> dict[str, Any] | None:
        raw = files.read_bytes(self.path)
        if raw is None:
            return None
        try:
            header = json.loads(raw)
        except ValueError:
            return None
        return (
            header
            if isinstance(header, dict) and header.get("key") in ("keyring", "file")
            else None
        )

    def _open(self, raw: bytes) -> CacheState:
        from cryptography.exceptions import InvalidTag

        header = json.loads(raw)
        if not isinstance(header, dict) or header.get("v") != FORMAT:
            raise ValueError("the token cache has an unknown format")
        if header.get("key") not in ("keyring", "file"):
            raise ValueError("the token cache names no key")
        key = self.keys.load(header["key"])
        try:
            plain = unseal(header, key, self._aad())
        except (InvalidTag, KeyError, TypeError, ValueError) as exc:
            raise ValueError("the token cache failed its integrity check") from exc
        return CacheState.from_json(json.loads(plain))

    def _seal(self, state: CacheState) -> None:

        header = self._header()
        storage: Storage | None = header["key"] if header else None
        key: bytes | None = None
        if storage is not None:
            try:
                key = self.keys.load(storage)
            except KeyUnavailable:
                key = None
        if key is None or storage is None:
            storage, key = self.keys.create()
        plain = json.dumps(state.to_json()).encode()
        files.write_private(self.path, seal(storage, key, plain, self._aad(), version=FORMAT))

    def _discard(self, reason: str) -> None:
        log.warning("The token cache %s was discarded (%s); sign in again.", self.path, reason)
        files.remove(self.path)
        self.keys.delete()
