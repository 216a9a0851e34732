"""Where the token cache's key lives: the OS keyring, or a key file (S8, X4).

The key is 256 random bits. With a usable keyring backend (macOS Keychain, Windows
Credential Locker, the Secret Service on a Linux desktop) it is kept there, bound to the
operating-system user. Where there is none (a headless Linux server: ``keyring`` reports its
``fail`` or ``null`` backend), it is kept in ``{config_dir}/keys/{slot}.key``, mode 0600 in a
0700 directory, and a warning says so once, when the file is created. A key file that other
users could read is not trusted.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Literal

from bastion.client import files

log = logging.getLogger("bastion.client")

KEYRING_SERVICE = "bastion"
KEY_BYTES = 32

Storage = Literal["keyring", "file"]


class KeyUnavailable(Exception):
    """The key is missing or cannot be trusted; the cache it protects must be discarded."""


class KeyringUnreachable(KeyUnavailable):
    """The key is in a keyring this process cannot reach (an SSH session into a desktop
    whose keyring is locked away): the cache is unusable here, but stays for where it is."""


def _keyring() -> Any | None:
    """The keyring backend, or None where there is no usable one. Imported only when asked:
    ``keyring`` takes a tenth of a second to load its backends."""
    if os.environ.get("BASTION_KEY_STORAGE") == "file":
        return None
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


class KeyStore:
    """The key of one token-cache slot (or, with another ``purpose``, of another sealed
    file of that slot: a profile's secrets have a key of their own, so wiping the tokens
    leaves them be)."""

    def __init__(self, config_dir: Path, slot: str, purpose: str = "token-cache") -> None:
        self.config_dir = config_dir
        self.slot = slot
        self.purpose = purpose
        keys = config_dir / "keys"
        self.key_file = (keys if purpose == "token-cache" else keys / purpose) / f"{slot}.key"
        self.keyring_user = f"{purpose} {slot} {config_dir.resolve()}"

    def choose(self) -> Storage:
        """Where a new key would go."""
        return "keyring" if _keyring() is not None else "file"

    def describe(self, storage: Storage) -> str:
        return "keyring" if storage == "keyring" else f"key file {self.key_file}"

    def load(self, storage: Storage) -> bytes:
        if storage == "keyring":
            backend = _keyring()
            if backend is None:
                raise KeyringUnreachable("the token cache key is in a keyring not usable here")
            value = backend.get_password(KEYRING_SERVICE, self.keyring_user)
        else:
            value = self._read_key_file()
        if not value:
            raise KeyUnavailable(f"the token cache key is missing from the {storage}")
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise KeyUnavailable("the token cache key is damaged") from exc
        if len(key) != KEY_BYTES:
            raise KeyUnavailable("the token cache key has the wrong length")
        return key

    def create(self) -> tuple[Storage, bytes]:
        """A new key, stored where it belongs; returns where and the key."""
        key = secrets.token_bytes(KEY_BYTES)
        encoded = base64.b64encode(key).decode()
        backend = _keyring()
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, self.keyring_user, encoded)
                files.remove(self.key_file)
                return "keyring", key
            except Exception as exc:  # any backend failure: fall back, loudly
                log.warning("the OS keyring refused the token cache key (%s).", exc)
        files.write_private(self.key_file, encoded.encode())
        log.warning(
            "No usable OS keyring: the %s key is kept in %s (readable only by you). "
            "Anyone who can read your files as you can read what it protects.",
            self.purpose.replace("-", " "),
            self.key_file,
        )
        return "file", key

    def delete(self) -> None:
        backend = _keyring()
        if backend is not None:
            try:
                backend.delete_password(KEYRING_SERVICE, self.keyring_user)
            except Exception as exc:  # absent already, or a locked keyring
                log.debug("no keyring entry removed: %s", exc)
        files.remove(self.key_file)

    def _read_key_file(self) -> str | None:
        try:
            fd = os.open(self.key_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if sys.platform != "win32" and (
                info.st_mode & 0o077 or info.st_uid != os.getuid()  # type: ignore[attr-defined,unused-ignore]
            ):
                raise KeyUnavailable(
                    f"{self.key_file} can be read by other users or belongs to someone else"
                )
            return handle.read().decode("ascii", "replace").strip()


def seal(storage: Storage, key: bytes, plaintext: bytes, aad: bytes, *, version: int) -> bytes:
    """``plaintext`` sealed with AES-GCM under ``key``, as the JSON document kept on disk: the
    format ``version``, where the key is kept, the nonce and the ciphertext. ``aad`` binds the
    document to what it is for (a profile's cache, a profile's secrets)."""
    import json

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    data = AESGCM(key).encrypt(nonce, plaintext, aad)
    document = {
        "v": version,
        "key": storage,
        "nonce": base64.b64encode(nonce).decode(),
        "data": base64.b64encode(data).decode(),
    }
    return json.dumps(document).encode()


def unseal(document: dict[str, Any], key: bytes, aad: bytes) -> bytes:
    """The plaintext of a document :func:`seal` wrote; ``InvalidTag``, ``KeyError``,
    ``TypeError`` or ``ValueError`` when it was tampered with or is not one."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce, data = base64.b64decode(document["nonce"]), base64.b64decode(document["data"])
    return AESGCM(key).decrypt(nonce, data, aad)
