"""Argon2id password hashing (RFC 9106) and the new-password rules (NIST SP 800-63B-4)."""

from __future__ import annotations

import base64

import argon2
import pytest

from bastion.authority.passwords import (
    MIN_PASSWORD_LENGTH,
    PasswordHasher,
    check_new_password,
)
from bastion.core.config import Argon2Params
from bastion.core.errors import UsageError

PARAMS = Argon2Params()


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(PARAMS)


def _salt(phc: str) -> bytes:
    encoded = phc.split("$")[4]
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def test_hashes_are_salted_argon2id_phc_strings_with_the_configured_cost(
    hasher: PasswordHasher,
) -> None:
    first, second = hasher.hash("correct horse"), hasher.hash("correct horse")
    assert first != second
    for phc in (first, second):
        assert phc.startswith("$argon2id$")
        fields = phc.split("$")
        assert fields[3] == f"m={PARAMS.memory_kib},t={PARAMS.time_cost},p={PARAMS.parallelism}"
        assert len(_salt(phc)) >= 4
    assert _salt(first) != _salt(second)


def test_verify(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert hasher.verify(stored, "correct horse battery staple")
    assert not hasher.verify(stored, "correct horse battery stapl")
    assert not hasher.verify(stored, "")


@pytest.mark.parametrize("bad", ["", "not a hash", "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA"])
def test_verify_refuses_invalid_hashes_without_raising(hasher: PasswordHasher, bad: str) -> None:
    assert not hasher.verify(bad, "anything")


def test_needs_rehash_only_below_the_current_cost(hasher: PasswordHasher) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert hasher.needs_rehash(weak)
    assert not hasher.needs_rehash(hasher.hash("pw"))
    stronger = argon2.PasswordHasher(
        time_cost=PARAMS.time_cost + 1,
        memory_cost=PARAMS.memory_kib,
        parallelism=PARAMS.parallelism,
        salt_len=16,
    ).hash("pw")
    assert not hasher.needs_rehash(stronger)
    argon2i = argon2.PasswordHasher(
        time_cost=PARAMS.time_cost,
        memory_cost=PARAMS.memory_kib,
        parallelism=PARAMS.parallelism,
        type=argon2.Type.I,
    ).hash("pw")
    assert hasher.needs_rehash(argon2i)


def test_verify_dummy_returns_nothing_and_does_not_raise(hasher: PasswordHasher) -> None:
    hasher.verify_dummy("whatever")
    hasher.verify_dummy("")


def test_new_password_length_rules() -> None:
    assert MIN_PASSWORD_LENGTH == 8
    with pytest.raises(UsageError, match="at least 8"):
        check_new_password("x" * 7)
    check_new_password("k3#Vq9!z")
    passphrase = "über die Brücke gehen wir 🚲 und dann nach Hause, langsam."
    passphrase = (passphrase + " " * 64)[:64]
    assert len(passphrase) == 64
    check_new_password(passphrase)
    check_new_password("x" * 1024)
    with pytest.raises(UsageError, match="at most 1024"):
        check_new_password("x" * 1025)
