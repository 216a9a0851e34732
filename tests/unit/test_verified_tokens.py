"""Reusing a signature check never skips the claims: expiry, issuer and audience are checked
on every use of a remembered token."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import ECKey, KeySet

from bastion.authority.token_validation import VerifiedTokens, validate_access_token
from bastion.authority.tokens import sign
from bastion.core.errors import InvalidToken

ISSUER, AUDIENCE = "https://a.example/t/x", "https://a.example/api/mail"


def test_a_remembered_token_is_still_checked_for_expiry_issuer_and_audience() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    now = time.time()
    token = sign(key, "at+jwt", {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "exp": now + 300})
    keys = KeySet([key])
    lookups: list[bool] = []

    def lookup(refresh: bool) -> KeySet:
        lookups.append(refresh)
        return keys

    verified = VerifiedTokens()
    first = validate_access_token(
        token, issuer=ISSUER, audience=AUDIENCE, keys=lookup, now=now, verified=verified
    )
    again = validate_access_token(
        token, issuer=ISSUER, audience=AUDIENCE, keys=lookup, now=now + 1, verified=verified
    )
    assert first == again and len(lookups) == 1  # the signature was checked once
    with pytest.raises(InvalidToken, match="expired"):
        validate_access_token(
            token, issuer=ISSUER, audience=AUDIENCE, keys=lookup, now=now + 400, verified=verified
        )
    with pytest.raises(InvalidToken, match="audience"):
        validate_access_token(
            token, issuer=ISSUER, audience=AUDIENCE + "x", keys=lookup, now=now, verified=verified
        )
    # a token that differs in one character is a different token: checked in full
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(InvalidToken):
        validate_access_token(
            tampered, issuer=ISSUER, audience=AUDIENCE, keys=lookup, now=now, verified=verified
        )
