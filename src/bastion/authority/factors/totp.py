"""TOTP: Time-Based One-Time Password Algorithm, RFC 6238 (https://www.rfc-editor.org/rfc/rfc6238).

Defaults are what authenticator apps expect: HMAC-SHA-1, 6 digits, 30-second steps, and one
step of drift either way (section 5.2 and 6). The time is always an argument (pyca's
``TOTP.generate(time)``), so tests move time instead of sleeping. Comparisons are
constant-time and every candidate step is checked, matched or not.

Replay protection (a step accepted once is refused again, section 5.2) needs shared state and
lives with the stored factor: ``bastion.authority.factor_store.claim_step``.
"""

from __future__ import annotations

import base64
import hmac
import os
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.hashes import SHA1, SHA256, SHA512
from cryptography.hazmat.primitives.twofactor.totp import TOTP

PERIOD = 30
DIGITS = 6
ALGORITHM = "SHA1"
DRIFT_STEPS = 1
SECRET_BYTES = 20

_ALGORITHMS: dict[str, type[SHA1 | SHA256 | SHA512]] = {
    "SHA1": SHA1,
    "SHA256": SHA256,
    "SHA512": SHA512,
}


def generate_secret() -> bytes:
    """A new seed: 160 bits from the OS CSPRNG, the HMAC-SHA-1 output length (section 5.1)."""
    return os.urandom(SECRET_BYTES)


def step_at(now: float, period: int = PERIOD) -> int:
    return int(now // period)


def _totp(secret: bytes, digits: int, algorithm: str, period: int) -> TOTP:
    return TOTP(secret, digits, _ALGORITHMS[algorithm](), period, enforce_key_length=False)


def code_at(
    secret: bytes,
    now: float,
    *,
    digits: int = DIGITS,
    algorithm: str = ALGORITHM,
    period: int = PERIOD,
) -> str:
    return _totp(secret, digits, algorithm, period).generate(int(now)).decode()


def matching_step(
    secret: bytes,
    code: str,
    now: float,
    *,
    drift: int = DRIFT_STEPS,
    digits: int = DIGITS,
    algorithm: str = ALGORITHM,
    period: int = PERIOD,
) -> int | None:
    code = code.replace(" ", "")
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    generator = _totp(secret, digits, algorithm, period)
    current = step_at(now, period)
    found = None
    for step in range(current - drift, current + drift + 1):
        expected = generator.generate(step * period)
        if hmac.compare_digest(expected, code.encode()) and found is None:
            found = step
    return found


def secret_to_base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode().rstrip("=")


def base32_to_secret(text: str) -> bytes:
    cleaned = text.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def provisioning_uri(secret: bytes, *, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}")
    query = urlencode(
        {
            "secret": secret_to_base32(secret),
            "issuer": issuer,
            "algorithm": ALGORITHM,
            "digits": DIGITS,
            "period": PERIOD,
        }
    )
    return f"otpauth://totp/{label}?{query}"
