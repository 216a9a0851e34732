"""Argon2id password hashing (argon2-cffi), and the rules for choosing a password.

Hashing is Argon2id, the variant RFC 9106 section 4 recommends, with a 16-byte random salt
(section 3.1 asks for at least 8; 16 is the RFC's recommendation) and the cost from
:class:`~bastion.core.config.Argon2Params` (never below OWASP's m=19456 KiB, t=2, p=1). Hashes are
stored as PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) so each one carries the
cost it was made with.

Password rules follow NIST SP 800-63B-4 section 3.1.1.2: at least 8 characters, up to a
generous maximum, every printable character and space and Unicode allowed, no composition
rules, and never truncated. A password is normalised to NFKC before it is hashed, so that
the same password typed on another keyboard (a fullwidth form, a compatibility ligature)
still matches. A new password is refused, with the reason, when it is one of the most common
passwords, in a set of breached passwords (both lists ship in ``password_lists/``; see
its ``NOTICE.txt``), or made from a context word: the tenant's or the user's name (A1).
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION

from bastion.core.config import Argon2Params
from bastion.core.errors import UsageError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
SALT_BYTES = 16
#: context words shorter than this are too common inside passphrases to refuse
MIN_CONTEXT_WORD = 3
PRODUCT_WORDS = frozenset({"bastion"})
_NOT_LETTERS = re.compile(r"[\W\d_]+")


def normalize(password: str) -> str:
    """NFKC, as NIST SP 800-63B-4 section 3.1.1.2 asks before hashing a password."""
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True)
class Match:
    """How a typed password compared with a stored hash."""

    matched: bool
    #: the stored hash should be replaced by a fresh hash of the normalised password
    rehash: bool = False


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
        """A fresh ``$argon2id$`` PHC string for *password* (normalised to NFKC), with a new
        random salt."""
        return self._hasher.hash(normalize(password))

    def check(self, stored_hash: str, password: str) -> Match:
        """Compare a typed password with a stored password hash.

        The password as typed is tried first: hashes stored before passwords were
        normalised are of the password as it was typed, and match only that; such a match
        asks for a rehash of the normalised form. Then the normalised form, when it
        differs. Either way the work is one or two Argon2id runs that depend only on the
        typed password, as in :meth:`verify_dummy`.
        """
        normal = normalize(password)
        if self.verify(stored_hash, password):
            return Match(True, rehash=normal != password or self.needs_rehash(stored_hash))
        if normal != password and self.verify(stored_hash, normal):
            return Match(True, rehash=self.needs_rehash(stored_hash))
        return Match(False)

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
        does not tell which names exist. It runs as many times as :meth:`check` would.
        """
        self.verify(self._dummy, password)
        if normalize(password) != password:
            self.verify(self._dummy, password)


@cache
def _password_list(name: str) -> frozenset[str]:
    data = resources.files("bastion.authority.password_lists").joinpath(name).read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split("\n")) - {""}


def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords (zxcvbn's list), lower case."""
    return _password_list("common.txt.gz")


def breached_passwords() -> frozenset[str]:
    """A set of breached passwords (from Have I Been Pwned, as Django ships it)."""
    return _password_list("breached.txt.gz")


def context_words(*names: str) -> frozenset[str]:
    """The context words of a tenant or a user (A1): every run of letters of at least
    three in their names (tenant name and display name, user name and display name), and
    the product's name."""
    words = set(PRODUCT_WORDS)
    for name in names:
        for word in _NOT_LETTERS.split(normalize(name).lower()):
            if len(word) >= MIN_CONTEXT_WORD:
                words.add(word)
        whole = _NOT_LETTERS.sub("", normalize(name).lower())
        if len(whole) >= MIN_CONTEXT_WORD:
            words.add(whole)
    return frozenset(words)


def password_problem(password: str, context: Iterable[str] = ()) -> str | None:
    """Why ``password`` may not be chosen today, or None when it may (A1).

    Length counts the characters of the normalised password. The lists and the context
    words are compared without case, and a context word is refused with any digits and
    punctuation around it (``Contoso2024!``), never when it is merely part of a longer
    passphrase.
    """
    normal = normalize(password)
    if len(normal) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters."
    if len(normal) > MAX_PASSWORD_LENGTH:
        return f"the password must have at most {MAX_PASSWORD_LENGTH} characters."
    folded = {normal.lower(), normal.lower().strip()}
    if folded & common_passwords():
        return "the password is one of the 30,000 most common passwords."
    if folded & breached_passwords():
        return "the password is in a published set of breached passwords."
    letters = _NOT_LETTERS.sub("", normal.lower())
    if letters and letters in set(context):
        return "the password is made from the name of this tenant, this user or the product."
    return None


def check_new_password(password: str, context: Iterable[str] = ()) -> None:
    """Refuse a new password that :func:`password_problem` finds a problem with.

    NIST SP 800-63B-4 section 3.1.1.2: length and the blocklists are the only rules; no
    composition rules, and the password is never truncated.
    """
    problem = password_problem(password, context)
    if problem:
        raise UsageError(
            problem,
            hint="A few unrelated words with spaces make a good passphrase.",
            parameter="password",
        )
