"""Secrets at rest: the master key, sealing with AES-GCM, keyed hashes for lookups.

The master key (32 random bytes) lives in a file readable only by its owner. From it, HKDF
derives one key per purpose, so that a token's lookup hash can never be confused with a
sealed TOTP seed. Sealed values carry a version byte and a random 96-bit nonce; the
associated data binds each value to the row it belongs to, so a sealed seed copied onto
another user's row fails to open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.core.errors import ConfigError

_VERSION = b"\x01"


def load_or_create_master_key(path: Path) -> bytes:
    """Read the master key, creating it (mode 0600) on first use."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"master key file {path} is readable by others (mode {mode:o}).",
                hint=f"Run: chmod 600 {path}",
            )
        raw = base64.b64decode(path.read_bytes().strip())
        if len(raw) != 32:
            raise ConfigError(f"master key file {path} does not hold a 32-byte key.")
        return raw
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(key) + b"\n")
    finally:
        os.close(fd)
    return key


class Keyring:
    """Purpose-bound keys derived from the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._master = master_key
        self._cache: dict[str, bytes] = {}

    def key(self, purpose: str) -> bytes:
        if purpose not in self._cache:
            self._cache[purpose] = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()
            ).derive(self._master)
        return self._cache[purpose]

    def seal(self, purpose: str, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return _VERSION + nonce + AESGCM(self.key(purpose)).encrypt(nonce, plaintext, associated)

    def open(self, purpose: str, sealed: bytes, associated: bytes) -> bytes:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown sealed-value version")
        return AESGCM(self.key(purpose)).decrypt(sealed[1:13], sealed[13:], associated)

    def lookup_hash(self, purpose: str, value: str) -> str:
        """A keyed hash (HMAC-SHA-256) for finding a high-entropy secret by value.

        Tokens and codes are stored, and logged, only as these.
        """
        return hmac.new(self.key(purpose), value.encode(), hashlib.sha256).hexdigest()


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` bytes from the OS CSPRNG."""
    return secrets.token_urlsafe(nbytes)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)
