"""Argon2id password hashing (argon2-cffi), and the rules for choosing a password.

Hashing is Argon2id, the variant RFC 9106 section 4 recommends, with a 16-byte random salt
(section 3.1 asks for at least 8; 16 is the RFC's recommendation) and the cost from
:class:`~bastion.config.Argon2Params` (never below OWASP's m=19456 KiB, t=2, p=1). Hashes are
stored as PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) so each one carries the
cost it was made with.

Password rules follow NIST SP 800-63B-4 section 3.1.1.2: at least 8 characters, up to a
generous maximum, every printable character and space and Unicode allowed, no composition
rules, and never truncated.
"""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION

from bastion.config import Argon2Params
from bastion.errors import UsageError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
SALT_BYTES = 16


class PasswordHasher:
    """Argon2id (RFC 9106) with the configured cost; one instance per process is enough."""

    def __init__(self, params: Argon2Params) -> None:
        self._params = params
        self._hasher = argon2.PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            salt_len=SALT_BYTES,
            type=argon2.Type.ID,
        )
        # Made with the same cost as real hashes, so verifying against it costs the same.
        self._dummy = self._hasher.hash("unknown user placeholder")

    def hash(self, password: str) -> str:
        """A fresh ``$argon2id$`` PHC string for *password*, with a new random salt."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether *password* matches *stored_hash*; False (never an error) for a bad hash."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when *stored_hash* is weaker than the current cost (or not Argon2id at all).

        Hashes made with a higher cost than the current one are left alone.
        """
        try:
            stored = argon2.extract_parameters(stored_hash)
        except InvalidHashError:
            return True
        return (
            stored.type is not argon2.Type.ID
            or stored.version < ARGON2_VERSION
            or stored.memory_cost < self._params.memory_kib
            or stored.time_cost < self._params.time_cost
            or stored.parallelism < self._params.parallelism
            or stored.salt_len < SALT_BYTES
        )

    def verify_dummy(self, password: str) -> None:
        """Spend the time of a real :meth:`verify`, for a user or code that does not exist.

        An unknown account then costs as much as a known one with a wrong password, so timing
        does not tell which names exist.
        """
        self.verify(self._dummy, password)


def check_new_password(password: str) -> None:
    """Refuse a new password shorter than 8 or longer than 1024 characters.

    NIST SP 800-63B-4 section 3.1.1.2: length is the only rule; no composition rules, and
    the password is never truncated.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters.",
            hint="A few unrelated words with spaces make a good passphrase.",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UsageError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters.")
