"""Single-use recovery codes (NIST SP 800-63B-4 section 4.2.1.1: at least 64 bits each).

A code is a 4-character lookup prefix, which is not secret and lets the server find the one
stored hash to check, and a 14-character secret (14 x log2(31) = 69.4 bits). Letters and
digits that look alike (0/o, 1/l/i) are left out. Codes are shown once; the caller stores only
an Argon2id hash of the whole normalized code (``PasswordHasher``).
"""

from __future__ import annotations

import math
import secrets

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
LOOKUP_LENGTH = 4
SECRET_LENGTH = 14
SECRET_BITS = SECRET_LENGTH * math.log2(len(ALPHABET))
assert SECRET_BITS >= 64


def generate_codes(count: int = 10) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LOOKUP_LENGTH + SECRET_LENGTH))
        codes.append(f"{raw[:4]}-{raw[4:11]}-{raw[11:]}")
    return codes


def normalize(code: str) -> tuple[str, str] | None:
    """(lookup prefix, whole code) as stored, or None for anything malformed."""
    raw = code.strip().lower().replace("-", "").replace(" ", "")
    if len(raw) != LOOKUP_LENGTH + SECRET_LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return raw[:LOOKUP_LENGTH], raw
