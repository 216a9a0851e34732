"""The token cache: encrypted at rest, its key in the keyring or a 0600 key file (S8, X4),
and read-modify-write under a lock shared by processes."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from bastion.client.cache import Account, CachedToken, TokenCache

REFRESH = "rt-" + "R" * 40
ACCESS = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xIn0.c2lnbmF0dXJl"


class MemoryKeyring(KeyringBackend):
    """A keyring backend in memory, standing in for the OS keyring. Defining a backend class
    registers it with ``keyring``; its negative priority keeps ``keyring`` from choosing it by
    itself for the rest of the test run (and for nothing else than ``set_keyring``)."""

    priority = -1  # type: ignore[assignment]

    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}
        self.refuse = refuse

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.refuse:
            raise keyring.errors.PasswordSetError("locked")
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.secrets:
            raise keyring.errors.PasswordDeleteError("absent")
        del self.secrets[(service, username)]


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    previous = keyring.get_keyring()
    monkeypatch.delenv("BASTION_KEY_STORAGE", raising=False)
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    monkeypatch.delenv("BASTION_KEY_STORAGE", raising=False)
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def fill(cache: TokenCache) -> None:
    with cache.transaction() as state:
        state.issuer = "http://127.0.0.1:1/t/x"
        state.refresh_token = REFRESH
        state.access["http://127.0.0.1:1/api/mail"] = CachedToken(ACCESS, 2e9, 900)
        state.account = Account("sub-1", "admin@x", "x", state.issuer, 1.0, "urn:bastion:acr:2fa")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_no_token_in(path: Path) -> None:
    data = path.read_bytes()
    for secret in (REFRESH, ACCESS, ACCESS.split(".")[1]):
        for form in (secret.encode(), base64.b64encode(secret.encode())):
            assert form not in data, f"{path} holds a token"


def test_key_file_when_there_is_no_keyring(
    tmp_path: Path, no_keyring: None, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenCache(tmp_path / "cfg", "prod")
    with caplog.at_level(logging.WARNING, logger="bastion.client"):
        fill(cache)
    assert "No usable OS keyring" in caplog.text  # X4: an explicit warning
    key_file = tmp_path / "cfg" / "keys" / "prod.key"
    assert cache.key_storage == f"key file {key_file}"
    assert mode(key_file) == 0o600 and mode(key_file.parent) == 0o700
    assert mode(cache.path) == 0o600 and mode(cache.path.parent) == 0o700
    assert_no_token_in(cache.path)
    state = TokenCache(tmp_path / "cfg", "prod").load()
    assert state.refresh_token == REFRESH and state.account and state.account.username == "admin@x"
    assert state.access["http://127.0.0.1:1/api/mail"].token == ACCESS
    assert not [p for p in cache.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_key_in_the_keyring(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    cache = TokenCache(tmp_path, "prod")
    fill(cache)
    assert cache.key_storage == "keyring"
    assert not (tmp_path / "keys").exists()
    [(service, _user)] = memory_keyring.secrets
    assert service == "bastion"
    assert_no_token_in(cache.path)
    assert cache.load().refresh_token == REFRESH
    cache.wipe()
    assert not memory_keyring.secrets and not cache.path.exists()


def test_a_keyring_that_refuses_falls_back_to_a_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring(refuse=True))
    try:
        cache = TokenCache(tmp_path, "p")
        fill(cache)
        assert json.loads(cache.path.read_bytes())["key"] == "file"
        assert "refused" in caplog.text
        assert cache.load().refresh_token == REFRESH
    finally:
        keyring.set_keyring(previous)


def test_one_flipped_byte_discards_the_cache(tmp_path: Path, no_keyring: None) -> None:
    cache = TokenCache(tmp_path, "p")
    fill(cache)
    sealed = json.loads(cache.path.read_bytes())
    data = bytearray(base64.b64decode(sealed["data"]))
    data[10] ^= 0x01
    sealed["data"] = base64.b64encode(bytes(data)).decode()
    cache.path.write_text(json.dumps(sealed))
    state = cache.load()
    assert state.refresh_token is None and state.access == {}
    assert not cache.path.exists() and not (tmp_path / "keys" / "p.key").exists()


def test_a_cache_moved_to_another_profile_does_not_open(tmp_path: Path, no_keyring: None) -> None:
    cache = TokenCache(tmp_path, "a")
    fill(cache)
    other = TokenCache(tmp_path, "b")
    other.path.write_bytes(cache.path.read_bytes())
    (tmp_path / "keys" / "b.key").write_bytes((tmp_path / "keys" / "a.key").read_bytes())
    os.chmod(tmp_path / "keys" / "b.key", 0o600)
    assert other.load().refresh_token is None  # the profile name is authenticated data


def test_a_key_file_others_can_read_is_not_trusted(tmp_path: Path, no_keyring: None) -> None:
    cache = TokenCache(tmp_path, "p")
    fill(cache)
    os.chmod(tmp_path / "keys" / "p.key", 0o644)
    assert cache.load().refresh_token is None
    assert not cache.path.exists()


def test_a_missing_key_discards_the_cache(tmp_path: Path, no_keyring: None) -> None:
    cache = TokenCache(tmp_path, "p")
    fill(cache)
    (tmp_path / "keys" / "p.key").unlink()
    assert cache.load().refresh_token is None


def test_transactions_are_serialized(tmp_path: Path, no_keyring: None) -> None:
    """Each transaction re-reads under the lock: no update is lost."""
    with TokenCache(tmp_path, "p").transaction() as state:
        state.refresh_token = "0"

    def bump() -> None:
        for _ in range(10):
            with TokenCache(tmp_path, "p").transaction() as state:
                state.refresh_token = str(int(state.refresh_token or "0") + 1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert TokenCache(tmp_path, "p").load().refresh_token == "40"


def test_fresh_renews_ahead_of_expiry() -> None:
    long = CachedToken("t", expires_at=1000.0, lifetime=900)
    assert long.fresh(939.0) and not long.fresh(941.0)  # 60 s ahead
    short = CachedToken("t", expires_at=1000.0, lifetime=2)
    assert short.fresh(999.7) and not short.fresh(999.9)  # 10 % of a short lifetime


def test_a_keyring_out_of_reach_leaves_the_cache_alone(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    """Over SSH into a desktop, the keyring may be out of reach: nothing is usable there,
    and nothing is destroyed for the session that can reach it."""
    cache = TokenCache(tmp_path, "p")
    fill(cache)
    keyring.set_keyring(fail.Keyring())
    assert cache.load().refresh_token is None and cache.path.exists()
    keyring.set_keyring(memory_keyring)
    assert cache.load().refresh_token == REFRESH
