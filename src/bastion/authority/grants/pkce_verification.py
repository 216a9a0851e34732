"""Proof Key for Code Exchange, RFC 7636 — S256 only (RFC 9700 section 2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import re

from bastion.core.errors import InvalidGrant, InvalidRequest
from bastion.core.secrets_at_rest import constant_time_equals

#: RFC 7636 section 4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
#: a base64url SHA-256 digest, no padding
CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Validate the authorization request's PKCE parameters (section 4.3)."""
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE with S256).")
    if method != "S256":
        raise InvalidRequest(
            "code_challenge_method must be S256.", hint="The plain method is not accepted."
        )
    if not CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is not a base64url SHA-256 value.")
    return challenge


def verify(verifier: str | None, challenge: str) -> None:
    """Section 4.6: the verifier must hash to the challenge."""
    if not verifier or not VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is missing or malformed.")
    if not constant_time_equals(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
