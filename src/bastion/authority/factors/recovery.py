"""Recovery codes."""

from __future__ import annotations

import secrets

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789" + "x"
LOOKUP_LENGTH = 4
SECRET_LENGTH = 14


def generate_codes(count: int = 10) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LOOKUP_LENGTH + SECRET_LENGTH))
        codes.append(f"{raw[:4]}-{raw[4:11]}-{raw[11:]}")
    return codes


def normalize(code: str) -> tuple[str, str] | None:
    raw = code.lower().replace("-", "").replace(" ", "")
    if len(raw) != LOOKUP_LENGTH + SECRET_LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return raw[:LOOKUP_LENGTH], raw
