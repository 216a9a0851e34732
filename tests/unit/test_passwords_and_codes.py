"""Argon2id hashing (A2) and recovery-code format (A6)."""

from __future__ import annotations

import argon2
import pytest

from bastion.authority.factors import recovery
from bastion.authority.passwords import PasswordHasher, check_new_password
from bastion.config import Argon2Params
from bastion.errors import UsageError


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(Argon2Params())


def test_hashes_are_argon2id_salted_and_carry_their_cost(hasher: PasswordHasher) -> None:
    a, b = hasher.hash("correct horse"), hasher.hash("correct horse")
    assert a != b
    for h in (a, b):
        assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        salt = h.split("$")[4]
        assert len(salt) * 6 // 8 >= 16
    assert hasher.verify(a, "correct horse")
    assert not hasher.verify(a, "correct horsE")
    assert not hasher.verify("not a hash", "x")


def test_weaker_hashes_need_a_rehash(hasher: PasswordHasher) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert hasher.needs_rehash(weak)
    assert not hasher.needs_rehash(hasher.hash("pw"))


def test_parameters_below_owasp_are_refused() -> None:
    with pytest.raises(UsageError):
        Argon2Params(memory_kib=8192).check()


@pytest.mark.parametrize(
    "password", ["8 chars!", "ein Passwort mit Leerzeichen und Ümläüten 🔑" * 1, "x" * 64]
)
def test_new_passwords_have_no_composition_rules(password: str) -> None:
    check_new_password(password)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(UsageError, match="at least 8"):
        check_new_password("7 chars")


def test_recovery_codes_carry_64_bits_and_normalize() -> None:
    assert recovery.SECRET_BITS >= 64
    assert len(set(recovery.ALPHABET)) == len(recovery.ALPHABET)
    codes = recovery.generate_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        lookup, full = recovery.normalize(code.upper().replace("-", " ")) or ("", "")
        assert full == code.replace("-", "") and lookup == full[:4]
    assert recovery.normalize("too-short") is None
    assert recovery.normalize("0000-0000000-0000000") is None  # 0 is not in the alphabet
