"""Validating JWT access tokens (RFC 9068 section 4), as every service does.

A token is accepted only if all of these hold, in this order:

1. the header's ``typ`` is ``at+jwt`` (so an ID token cannot pass for an access token);
2. ``alg`` is on the allowlist: ES256 only (``none`` and HMAC are refused);
3. the key is the tenant's, chosen by ``kid`` from the tenant issuer's JWKS; ``jku``, ``x5u``
   and ``jwk`` headers are ignored, never fetched or trusted;
4. the signature verifies;
5. ``iss`` equals the tenant issuer exactly, and ``aud`` names this service;
6. ``exp`` and ``nbf`` hold within :data:`CLOCK_SKEW` seconds.

Anything else raises :class:`~bastion.core.errors.InvalidToken`. The key lookup is a callable so
that a service running alone can fetch the JWKS over HTTP and one inside ``bastion serve``
can read it from the database; both refetch once on an unknown ``kid``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from bastion.core.errors import InvalidToken

ALLOWED_ALGORITHMS = ("ES256",)
#: the documented tolerance for clocks that disagree (at most a few minutes, T8)
CLOCK_SKEW = 60

KeyLookup = Callable[[bool], KeySet]
"""Returns the tenant's public keys; called with ``True`` to force a refetch."""


class VerifiedTokens:
    """Tokens whose signature this process verified in the last minute, with their claims.

    A script presents the same access token for many commands; checking its ES256
    signature once a minute instead of on every command saves most of the check. The
    claims (issuer, audience, expiry) are still checked on every use; only the signature
    check is reused, and only for the exact same token text. The minute bounds how long a
    key withdrawn from the JWKS keeps working for a token already seen."""

    TTL = 60.0
    MAX = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, token: str) -> dict[str, Any] | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX:
                # drop the oldest tenth (dicts keep insertion order)
                for old in list(self._entries)[: self.MAX // 10]:
                    del self._entries[old]
            self._entries[token] = (time.monotonic() + self.TTL, claims)


def validate_access_token(
    token: str,
    *,
    issuer: str,
    audience: str,
    keys: KeyLookup,
    now: float,
    verified: VerifiedTokens | None = None,
) -> dict[str, Any]:
    """Return the claims of a valid access token, or raise :class:`InvalidToken`."""
    seen = verified.get(token) if verified is not None else None
    if seen is not None:
        check_claims(seen, issuer=issuer, audience=audience, now=now)
        return seen
    claims = _verify(token, keys)
    check_claims(claims, issuer=issuer, audience=audience, now=now)
    if verified is not None:
        verified.put(token, claims)
    return claims


def _verify(token: str, keys: KeyLookup) -> dict[str, Any]:
    """The claims of a token whose header and signature check out."""
    try:
        header_segment = token.split(".", 1)[0]
        header = json.loads(_b64decode(header_segment))
    except (ValueError, IndexError) as exc:
        raise InvalidToken("The access token is malformed.") from exc
    if not isinstance(header, dict) or str(header.get("typ", "")).lower() not in (
        "at+jwt",
        "application/at+jwt",
    ):
        raise InvalidToken("The token is not an access token (typ must be at+jwt).")
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise InvalidToken("The token's signing algorithm is not allowed.")
    key = _find_key(keys, header.get("kid"))
    try:
        compact = jws.deserialize_compact(token, key, algorithms=list(ALLOWED_ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise InvalidToken("The token's signature does not verify.") from exc
    try:
        claims = json.loads(compact.payload)
    except ValueError as exc:
        raise InvalidToken("The token's claims are malformed.") from exc
    if not isinstance(claims, dict):
        raise InvalidToken("The token's claims are malformed.")
    return claims


def check_claims(claims: dict[str, Any], *, issuer: str, audience: str, now: float) -> None:
    if claims.get("iss") != issuer:
        raise InvalidToken("The token was issued by another issuer.")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise InvalidToken("The token is meant for another audience.")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or now > exp + CLOCK_SKEW:
        raise InvalidToken("The access token has expired.")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or now + CLOCK_SKEW < nbf):
        raise InvalidToken("The access token is not valid yet.")
    if not isinstance(claims.get("sub"), str):
        raise InvalidToken("The access token has no subject.")


def _find_key(keys: KeyLookup, kid: object) -> ECKey:
    if not isinstance(kid, str):
        raise InvalidToken("The token names no key.")
    for refresh in (False, True):
        for key in keys(refresh).keys:
            if key.kid == kid and isinstance(key, ECKey):
                return key
    raise InvalidToken("The token was signed with an unknown key.")


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unverified_claim(token: str, name: str) -> str:
    """A string claim read before any check, only to choose what to check the token against
    (whose keys, which audience); the token is then validated in full."""
    try:
        value = json.loads(_b64decode(token.split(".")[1]))[name]
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("The access token is malformed.") from exc
    if not isinstance(value, str):
        raise InvalidToken("The access token is malformed.")
    return value
