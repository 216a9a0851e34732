"""Proof Key for Code Exchange, RFC 7636: S256 only (section 4.2)."""

from __future__ import annotations

import base64
import hashlib
import secrets


def pair() -> tuple[str, str]:
    """A code verifier (section 4.1: 43-128 characters, here 86 from 64 random bytes) and
    its S256 code challenge."""
    verifier = secrets.token_urlsafe(64)
    return verifier, challenge(verifier)


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
