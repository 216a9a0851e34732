"""Single-use recovery codes (NIST SP 800-63B-4 section 4.2.1.1: at least 64 bits each).

A code is a 4-character lookup prefix, which is not secret and lets the server find the one
stored hash to check, and a 14-character secret drawn with :mod:`secrets` from a 32-symbol
alphabet (14 x 5 = 70 bits). It is shown as ``xxxx-xxxxxxx-xxxxxxx``.

The alphabet leaves out the look-alikes ``0``, ``o``, ``i`` and ``l``. Case-insensitive
letters and digits minus those give only 31 symbols, so ``1`` stays in, and ``i`` and ``l``,
which never appear in a code, are read as ``1`` when typed.

Codes are shown once. The caller stores only an Argon2id hash of the whole normalized code
(:class:`bastion.authority.passwords.PasswordHasher`), found again by its lookup prefix, and
marks a code used the first time it is accepted.
"""

from __future__ import annotations

import secrets

ALPHABET = "abcdefghjkmnpqrstuvwxyz123456789"
assert len(ALPHABET) == 32 and len(set(ALPHABET)) == 32
BITS_PER_SYMBOL = 5
assert len(ALPHABET) == 2**BITS_PER_SYMBOL
LOOKUP_LENGTH = 4
SECRET_LENGTH = 14
#: entropy of the secret part of a code
SECRET_BITS = SECRET_LENGTH * BITS_PER_SYMBOL
assert SECRET_BITS >= 64

#: typed look-alikes that are read as the symbol they resemble
_FOLD = str.maketrans({"i": "1", "l": "1"})


def generate_codes(count: int = 10) -> list[str]:
    """*count* new codes, each ``xxxx-xxxxxxx-xxxxxxx`` (lookup prefix, then the secret)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LOOKUP_LENGTH + SECRET_LENGTH))
        codes.append(f"{raw[:4]}-{raw[4:11]}-{raw[11:]}")
    return codes


def normalize(code: str) -> tuple[str, str] | None:
    """(lookup prefix, whole normalized code) as stored, or None for anything malformed.

    Case, dashes and spaces do not matter; ``i`` and ``l`` are read as ``1``.
    """
    raw = code.strip().lower().replace("-", "").replace(" ", "").translate(_FOLD)
    if len(raw) != LOOKUP_LENGTH + SECRET_LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return raw[:LOOKUP_LENGTH], raw
