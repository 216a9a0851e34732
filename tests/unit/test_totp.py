"""TOTP against RFC 6238's own test vectors, and the drift window (A4, A5)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bastion.authority.factors import totp

DATA = json.loads((Path(__file__).parent.parent / "data" / "rfc6238_vectors.json").read_text())


@pytest.mark.parametrize(("when", "algorithm", "expected"), DATA["vectors"])
def test_rfc6238_appendix_b(when: int, algorithm: str, expected: str) -> None:
    seed = DATA["seeds"][algorithm].encode()
    assert totp.code_at(seed, when, digits=8, algorithm=algorithm) == expected
    step = totp.matching_step(seed, expected, when, digits=8, algorithm=algorithm)
    assert step == when // 30


def test_one_step_of_drift_either_way_and_no_more() -> None:
    secret = totp.generate_secret()
    now = 1_700_000_015.0
    current = totp.step_at(now)
    for offset in (-1, 0, 1):
        code = totp.code_at(secret, now + offset * 30)
        assert totp.matching_step(secret, code, now) == current + offset
    for offset in (-2, 2):
        code = totp.code_at(secret, now + offset * 30)
        if all(code != totp.code_at(secret, now + o * 30) for o in (-1, 0, 1)):
            assert totp.matching_step(secret, code, now) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5", "١٢٣٤٥٦"])
def test_malformed_codes_never_match(bad: str) -> None:
    assert totp.matching_step(totp.generate_secret(), bad, 1_700_000_000.0) is None


def test_spaces_inside_a_code_are_ignored() -> None:
    secret = totp.generate_secret()
    code = totp.code_at(secret, 1_700_000_000.0)
    assert totp.matching_step(secret, f"{code[:3]} {code[3:]}", 1_700_000_000.0) is not None


def test_seed_has_160_bits_and_survives_the_uri() -> None:
    secret = totp.generate_secret()
    assert len(secret) == 20
    uri = totp.provisioning_uri(secret, account="ada@contoso", issuer="Bastion Contoso")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    query = parse_qs(parts.query)
    assert totp.base32_to_secret(query["secret"][0]) == secret
    assert query["digits"] == ["6"] and query["period"] == ["30"]
    assert query["algorithm"] == ["SHA1"] and query["issuer"] == ["Bastion Contoso"]
