"""TOTP: Time-Based One-Time Password Algorithm, RFC 6238 (https://www.rfc-editor.org/rfc/rfc6238).

Defaults are what authenticator apps expect: HMAC-SHA-1, 6 digits, 30-second steps (RFC 6238
section 4 and 5.2; HOTP truncation per RFC 4226 section 5.3), and one step of drift either way
(RFC 6238 section 5.2 and 6). The time is always an argument (pyca's ``TOTP.generate(time)``),
so tests move time instead of sleeping. Comparisons are constant-time and every candidate
step is checked, matched or not.

Replay protection (RFC 6238 section 5.2: a code accepted once must not be accepted again)
needs shared state, so it is not done here: :func:`matching_step` returns the time step that
matched, and the caller refuses it in the database when it is at or below the last step
accepted for that factor (``bastion.authority.factor_store.claim_step``).
"""

from __future__ import annotations

import base64
import hmac
import os
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.hashes import SHA1, SHA256, SHA512
from cryptography.hazmat.primitives.twofactor.totp import TOTP

#: X, the time step in seconds (RFC 6238 section 4.1 and 5.2)
PERIOD = 30
DIGITS = 6
ALGORITHM = "SHA1"
#: steps accepted either side of the current one (RFC 6238 section 5.2 and 6)
DRIFT_STEPS = 1
#: 160 bits, the HMAC-SHA-1 output length (RFC 4226 section 4 R6, RFC 6238 section 5.1)
SECRET_BYTES = 20

_ALGORITHMS: dict[str, type[SHA1 | SHA256 | SHA512]] = {
    "SHA1": SHA1,
    "SHA256": SHA256,
    "SHA512": SHA512,
}


def generate_secret() -> bytes:
    """A new shared secret: 160 bits from the OS CSPRNG (RFC 4226 section 7.5)."""
    return os.urandom(SECRET_BYTES)


def step_at(now: float, period: int = PERIOD) -> int:
    """T = floor((now - T0) / X) with T0 = 0 (RFC 6238 section 4.2)."""
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
    """The code for Unix time *now* (RFC 6238 section 4.2)."""
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
    """The time step whose code is *code*, within *drift* steps of *now*, or None.

    Spaces are ignored; anything else that is not exactly *digits* ASCII digits is refused.
    All ``2 * drift + 1`` candidate steps are compared, in constant time, without stopping at
    a match (RFC 6238 section 5.2 and 6). Refusing a replayed step is the caller's job.
    """
    code = code.replace(" ", "")
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    generator = _totp(secret, digits, algorithm, period)
    candidate = code.encode()
    current = step_at(now, period)
    found = None
    for step in range(current - drift, current + drift + 1):
        expected = generator.generate(step * period)
        if hmac.compare_digest(expected, candidate) and found is None:
            found = step
    return found


def secret_to_base32(secret: bytes) -> str:
    """Base32 (RFC 4648 section 6) without padding, as authenticator apps expect."""
    return base64.b32encode(secret).decode().rstrip("=")


def base32_to_secret(text: str) -> bytes:
    """Decode base32 typed by a person: spaces, lower case and missing padding are fine.

    Raises :class:`binascii.Error` for anything that is not base32.
    """
    cleaned = text.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def provisioning_uri(secret: bytes, *, account: str, issuer: str) -> str:
    """An ``otpauth://totp/`` URI (Google Authenticator's Key URI Format) for enrolment.

    The label is ``issuer:account`` and every parameter is percent-encoded (RFC 3986 section
    2.1); the secret is unpadded base32.
    """
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {
            "secret": secret_to_base32(secret),
            "issuer": issuer,
            "algorithm": ALGORITHM,
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
