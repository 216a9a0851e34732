"""TOTP against RFC 6238's own test vectors, and the drift window (A4, A5)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from bastion.authority.factors import totp

DATA = json.loads((Path(__file__).parent.parent / "data" / "rfc6238_vectors.json").read_text())


@pytest.mark.parametrize(("when", "algorithm", "expected"), DATA["vectors"])
def test_rfc6238_appendix_b(when: int, algorithm: str, expected: str) -> None:
    seed = DATA["seeds"][algorithm].encode()
    assert totp.code_at(seed, when, digits=8, algorithm=algorithm) == expected
    step = totp.matching_step(seed, expected, when, digits=8, algorithm=algorithm)
    assert step == when // 30


def test_all_eighteen_appendix_b_rows_are_stored() -> None:
    assert len(DATA["vectors"]) == 18
    assert {len(DATA["seeds"][a]) for a in ("SHA1", "SHA256", "SHA512")} == {20, 32, 64}
    assert {row[1] for row in DATA["vectors"]} == {"SHA1", "SHA256", "SHA512"}


def test_drift_with_a_fixed_seed_is_exact() -> None:
    seed = DATA["seeds"]["SHA1"].encode()
    now = 1_111_111_111.0
    current = totp.step_at(now)
    codes = {offset: totp.code_at(seed, now + offset * 30) for offset in range(-2, 3)}
    assert len(set(codes.values())) == 5  # no accidental collision in this window
    for offset in (-1, 0, 1):
        assert totp.matching_step(seed, codes[offset], now) == current + offset
    for offset in (-2, 2):
        assert totp.matching_step(seed, codes[offset], now) is None
    wrong = next(c for c in ("000000", "111111", "222222") if c not in codes.values())
    assert totp.matching_step(seed, wrong, now) is None


def test_base32_is_unpadded_and_read_leniently() -> None:
    secret = totp.generate_secret()
    text = totp.secret_to_base32(secret)
    assert "=" not in text and len(text) == 32
    spaced = " ".join(text[i : i + 4] for i in range(0, len(text), 4)).lower()
    assert totp.base32_to_secret(spaced) == secret
    odd = bytes(range(7))  # base32 of 7 bytes needs padding, which is left out
    assert totp.base32_to_secret(totp.secret_to_base32(odd)) == odd


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
    assert len(totp.base32_to_secret(query["secret"][0])) == 20
    assert unquote(parts.path) == "/Bastion Contoso:ada@contoso"
    assert " " not in uri and "+" not in uri


def test_uri_label_escapes_slashes_and_question_marks() -> None:
    uri = totp.provisioning_uri(b"x" * 20, account="a/b?c", issuer="I&J")
    parts = urlsplit(uri)
    assert unquote(parts.path) == "/I&J:a/b?c"
    assert parse_qs(parts.query)["issuer"] == ["I&J"]
