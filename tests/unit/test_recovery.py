"""Recovery codes: format, alphabet and entropy (NIST SP 800-63B-4 section 4.2.1.1)."""

from __future__ import annotations

import math
import re

import pytest

from bastion.authority.factors import recovery

SYMBOL = f"[{re.escape(recovery.ALPHABET)}]"
FORMAT = re.compile(f"{SYMBOL}{{4}}-{SYMBOL}{{7}}-{SYMBOL}{{7}}")


def test_alphabet_has_32_distinct_symbols_without_look_alikes() -> None:
    assert len(recovery.ALPHABET) == 32 == len(set(recovery.ALPHABET))
    assert not set("0oil") & set(recovery.ALPHABET)
    assert recovery.ALPHABET.islower()


def test_entropy_is_at_least_64_bits() -> None:
    assert recovery.SECRET_BITS == 70
    assert recovery.SECRET_LENGTH * math.log2(len(recovery.ALPHABET)) >= 64


def test_ten_distinct_codes_in_the_display_format() -> None:
    codes = recovery.generate_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(FORMAT.fullmatch(code) for code in codes)
    assert len(recovery.generate_codes(3)) == 3


def test_normalize_round_trip() -> None:
    for code in recovery.generate_codes():
        full = code.replace("-", "")
        expected = (full[:4], full)
        assert recovery.normalize(code) == expected
        assert recovery.normalize(code.upper()) == expected
        assert recovery.normalize(full) == expected
        assert recovery.normalize(f"  {code[:4]} {code[5:]}  ".upper()) == expected


def test_typed_look_alikes_of_one_are_read_as_one() -> None:
    code = "abcd-1111111-2222222"
    assert recovery.normalize("abcd-iIlL111-2222222") == recovery.normalize(code)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abcd",
        "abcd-efghjkm-npqrst",
        "abcd-efghjkm-npqrstuv",
        "0000-0000000-0000000",
        "oooo-ooooooo-ooooooo",
        "abcd-efghjkm-npqrst!",
        "abcd_efghjkm_npqrstu",
        "\uff41\uff42\uff43\uff44-efghjkm-npqrstu",  # full-width letters
    ],
)
def test_malformed_codes_give_none(bad: str) -> None:
    assert recovery.normalize(bad) is None
