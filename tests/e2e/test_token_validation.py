"""T8: what a service accepts as an access token, against a real tenant's JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bastion.authority.token_validation import validate_access_token
from bastion.core.errors import InvalidToken
from tests.support.flows import Org, device_sign_in, make_tenant
from tests.support.server import ServerProcess


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    load = lambda x: json.loads(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))  # noqa: E731
    return load(h), load(p), s


def forge(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{signature}"


@pytest.fixture(scope="module")
def setup(server: ServerProcess) -> dict[str, Any]:
    t = make_tenant(server)
    other = make_tenant(server)
    mail = t.audience("mail")
    tokens = device_sign_in(t, t.password_only, resource=mail)
    other_tokens = device_sign_in(other, other.password_only, resource=mail)
    jwks = KeySet.import_key_set(httpx.get(f"{t.issuer}/discovery/keys").json())
    return {"t": t, "mail": mail, "tokens": tokens, "other": other_tokens, "jwks": jwks}


def check(setup: dict[str, Any], token: str, now: float | None = None) -> dict[str, Any]:
    t: Org = setup["t"]
    return validate_access_token(
        token,
        issuer=t.issuer,
        audience=setup["mail"],
        keys=lambda _r: setup["jwks"],
        now=now or t.server.now(),
    )


def test_the_real_token_is_accepted(setup: dict[str, Any]) -> None:
    claims = check(setup, setup["tokens"]["access_token"])
    header, _, _ = parts(setup["tokens"]["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    for claim in (
        "iss",
        "sub",
        "aud",
        "tid",
        "exp",
        "iat",
        "jti",
        "auth_time",
        "amr",
        "acr",
        "sid",
        "client_id",
        "roles",
    ):
        assert claim in claims


def _id_token(s: dict[str, Any]) -> str:
    return str(s["tokens"]["id_token"])


def _alg_none(s: dict[str, Any]) -> str:
    header, claims, _ = parts(s["tokens"]["access_token"])
    return forge({**header, "alg": "none"}, claims)


def _hs256_with_public_key(s: dict[str, Any]) -> str:
    header, claims, _ = parts(s["tokens"]["access_token"])
    header = {**header, "alg": "HS256"}
    public = json.dumps(s["jwks"].keys[0].as_dict(private=False)).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def _embedded_jwk(s: dict[str, Any]) -> str:
    header, claims, _ = parts(s["tokens"]["access_token"])
    attacker = ECKey.generate_key("P-256", parameters={"kid": header["kid"]})
    return jwt.encode({**header, "jwk": attacker.as_dict(private=False)}, claims, attacker)


def _attacker_key_same_kid(s: dict[str, Any]) -> str:
    header, claims, _ = parts(s["tokens"]["access_token"])
    attacker = ECKey.generate_key("P-256", parameters={"kid": header["kid"]})
    return jwt.encode({**header, "jku": "https://evil.example/jwks"}, claims, attacker)


def _other_tenant(s: dict[str, Any]) -> str:
    return str(s["other"]["access_token"])


def _flipped_signature(s: dict[str, Any]) -> str:
    token: str = s["tokens"]["access_token"]
    head, sig = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[5] ^= 0x01
    return f"{head}.{b64(bytes(raw))}"


FORGERIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "id token": _id_token,
    "alg none": _alg_none,
    "HS256 keyed with the public key": _hs256_with_public_key,
    "embedded jwk": _embedded_jwk,
    "jku and a foreign key": _attacker_key_same_kid,
    "another tenant's issuer": _other_tenant,
    "one flipped signature byte": _flipped_signature,
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_tokens_are_refused(setup: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidToken):
        check(setup, FORGERIES[name](setup))


def test_expired_and_not_yet_valid_tokens_are_refused(setup: dict[str, Any]) -> None:
    _, claims, _ = parts(setup["tokens"]["access_token"])
    with pytest.raises(InvalidToken, match="expired"):
        check(setup, setup["tokens"]["access_token"], now=claims["exp"] + 61)
    with pytest.raises(InvalidToken, match="not valid yet"):
        check(setup, setup["tokens"]["access_token"], now=claims["nbf"] - 61)
    # within the documented skew it is still accepted
    check(setup, setup["tokens"]["access_token"], now=claims["exp"] + 30)


def test_a_token_for_another_service_is_refused(setup: dict[str, Any]) -> None:
    t: Org = setup["t"]
    with pytest.raises(InvalidToken, match="audience"):
        validate_access_token(
            setup["tokens"]["access_token"],
            issuer=t.issuer,
            audience=t.audience("directory"),
            keys=lambda _r: setup["jwks"],
            now=t.server.now(),
        )


def test_unknown_resource_is_invalid_target(setup: dict[str, Any]) -> None:
    from tests.support.flows import device_code_request

    t: Org = setup["t"]
    response = httpx.post(
        f"{t.issuer}/oauth2/devicecode",
        data={"client_id": "bastion-cli", "resource": "https://unknown.example/api"},
    )
    assert response.json()["error"] == "invalid_target"
    mixed = httpx.post(
        f"{t.issuer}/oauth2/devicecode",
        data={
            "client_id": "bastion-cli",
            "scope": f"{t.audience('mail')}/.default {t.audience('sites')}/.default",
        },
    )
    assert mixed.json()["error"] == "invalid_scope"
    assert device_code_request(t, scope=f"{t.audience('mail')}/.default openid profile")
