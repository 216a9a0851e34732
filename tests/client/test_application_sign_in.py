"""An application's sign-in against httpx.MockTransport (S7): the client assertion it signs,
a new one at every renewal, the federated token read afresh, no key in the cache or the
profile, the certificate's end, PKCS#12 with its password from the environment."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import time
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

import bastion
from bastion.client import auth as auth_module
from bastion.client import profiles
from bastion.client.errors import ConfigError, SignInFailed, SignInRequired
from bastion.client.http import Http
from bastion.client.signin import application

URL = "https://127.0.0.1:8443"
TENANT = "contoso"
ISSUER = f"{URL}/t/{TENANT}"
TOKEN_ENDPOINT = f"{ISSUER}/oauth2/token"
MAIL = f"{URL}/api/mail"
DIRECTORY = f"{URL}/api/directory"
APP_ID = str(uuid.uuid4())
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(token: str, index: int) -> dict[str, Any]:
    piece = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)))
    return decoded


def unsigned_jwt(claims: dict[str, Any]) -> str:
    return f"{_b64(b'{}')}.{_b64(json.dumps(claims).encode())}.c2ln"


# -- certificates ---------------------------------------------------------------------------

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate(key: Key, *, days: float = 365, started_days_ago: float = 1) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nightly-reports")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=started_days_ago))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_file(
    path: Path, key: Key | None = None, cert: x509.Certificate | None = None, **cert_args: Any
) -> Path:
    key = key or rsa_key()
    cert = cert or certificate(key, **cert_args)
    path.write_bytes(key_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    return path


# -- the authority and a service, played by httpx.MockTransport -----------------------------


@dataclass
class Authority:
    expires_in: int = 3600
    #: tokens the mail service refuses with 401 invalid_token
    refused: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    service_calls: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/oauth2/authorize",
                    "token_endpoint": TOKEN_ENDPOINT,
                    "device_authorization_endpoint": f"{ISSUER}/oauth2/devicecode",
                    "bastion_services": {"mail": MAIL, "directory": DIRECTORY},
                },
            )
        if url == TOKEN_ENDPOINT:
            form = dict(httpx.QueryParams(request.content.decode()))
            self.token_requests.append(form)
            if self.error is not None:
                return httpx.Response(400, json=self.error)
            audience = form["scope"].removesuffix("/.default")
            now = int(time.time())
            token = unsigned_jwt(
                {
                    "iss": ISSUER,
                    "aud": audience,
                    "sub": "app-object-id",
                    "client_id": form["client_id"],
                    "idtyp": "app",
                    "app_displayname": "Nightly reports",
                    "iat": now,
                    "exp": now + self.expires_in,
                    "jti": str(uuid.uuid4()),
                }
            )
            return httpx.Response(
                200,
                json={
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "scope": form["scope"],
                },
            )
        if url.startswith(f"{MAIL}/commands/"):
            token = request.headers["authorization"].removeprefix("Bearer ")
            self.service_calls.append(token)
            if token in self.refused:
                return httpx.Response(
                    401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    json={"detail": "expired"},
                )
            return httpx.Response(200, json={"result": [{"identity": "alice"}]})
        return httpx.Response(404, json={"detail": f"no {url}"})

    def assertions(self) -> list[str]:
        return [form["client_assertion"] for form in self.token_requests]


class NobodyThere:
    """A prompt that fails the test if anything is asked or shown."""

    def ask(self, message: str, *, secret: bool = False) -> str:
        raise AssertionError(f"asked: {message}")

    def show(self, message: str) -> None:
        raise AssertionError(f"shown: {message}")

    def open_url(self, url: str) -> bool:
        raise AssertionError(f"opened: {url}")


@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Authority]:
    served = Authority()
    monkeypatch.setattr(
        Http, "_make_client", lambda self: httpx.Client(transport=httpx.MockTransport(served))
    )
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    monkeypatch.delenv("BASTION_CERTIFICATE_PASSWORD", raising=False)
    monkeypatch.delenv("BASTION_PROFILE", raising=False)
    monkeypatch.setattr(application, "_warned", set())
    yield served


def connect(tmp_path: Path, **kwargs: Any) -> bastion.Connection:
    kwargs.setdefault("app_id", APP_ID)
    return bastion.connect(
        URL, TENANT, config_dir=tmp_path / "config", prompt=NobodyThere(), **kwargs
    )


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The authenticator's clock moves ``seconds`` ahead (tokens issued before look old)."""
    real = time.time
    monkeypatch.setattr(
        auth_module, "time", types.SimpleNamespace(time=lambda: real() + seconds, sleep=time.sleep)
    )


# -- the assertion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_key", "alg", "import_key"),
    [
        (rsa_key, "PS256", RSAKey.import_key),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256", ECKey.import_key),
    ],
)
def test_the_client_assertion_is_signed_for_the_token_endpoint(
    authority: Authority,
    tmp_path: Path,
    make_key: Callable[[], Key],
    alg: str,
    import_key: Callable[[bytes], Any],
) -> None:
    key = make_key()
    cert = certificate(key)
    path = pem_file(tmp_path / "app.pem", key, cert)
    with connect(tmp_path, certificate=path) as conn:
        assert conn.invoke("mail", "Get-Mailbox") == [{"identity": "alice"}]
        status = conn.status()
    assert status.method == "certificate" and status.app_id == APP_ID
    assert status.account is not None
    assert status.account.username == f"Nightly reports (application {APP_ID})"
    # connect asked for the directory's token, the command for the mail service's
    scopes = [form["scope"] for form in authority.token_requests]
    assert scopes == [f"{DIRECTORY}/.default", f"{MAIL}/.default"]
    form = authority.token_requests[-1]
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == APP_ID
    assert form["client_assertion_type"] == JWT_BEARER
    assertion = form["client_assertion"]
    header, claims = _part(assertion, 0), _part(assertion, 1)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert header == {"alg": alg, "typ": "JWT", "x5t#S256": _b64(hashlib.sha256(der).digest())}
    assert claims["iss"] == claims["sub"] == APP_ID
    assert claims["aud"] == TOKEN_ENDPOINT
    assert claims["iat"] == claims["nbf"] and abs(claims["iat"] - time.time()) < 60
    assert 0 < claims["exp"] - claims["iat"] <= 300
    public = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verified = jws.deserialize_compact(assertion, import_key(public), algorithms=[alg])
    assert json.loads(verified.payload)["jti"] == claims["jti"]
    jtis = {_part(a, 1)["jti"] for a in authority.assertions()}
    assert len(jtis) == 2  # one assertion per token request


def test_an_expired_token_is_replaced_with_a_new_assertion(
    authority: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(tmp_path, certificate=pem_file(tmp_path / "app.pem")) as conn:
        conn.invoke("mail", "Get-Mailbox")
        first = authority.assertions()[-1]
        later(monkeypatch, 3600)
        conn.invoke("mail", "Get-Mailbox")
        second = authority.assertions()[-1]
    assert len(authority.token_requests) == 3
    assert _part(first, 1)["jti"] != _part(second, 1)["jti"]
    assert "refresh_token" not in json.dumps(authority.token_requests)
    assert authority.service_calls[0] != authority.service_calls[1]


def test_a_refused_token_is_replaced_with_a_new_assertion(
    authority: Authority, tmp_path: Path
) -> None:
    with connect(tmp_path, certificate=pem_file(tmp_path / "app.pem")) as conn:
        conn.invoke("mail", "Get-Mailbox")
        refused = authority.service_calls[-1]
        authority.refused.add(refused)
        assert conn.invoke("mail", "Get-Mailbox") == [{"identity": "alice"}]
    assert authority.service_calls[-2:] == [refused, authority.service_calls[-1]]
    assert authority.service_calls[-1] != refused
    jtis = [_part(a, 1)["jti"] for a in authority.assertions()]
    assert len(jtis) == 3 and len(set(jtis)) == 3


def test_a_federated_token_file_is_read_again_for_each_token(
    authority: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "federated-token"
    token_file.write_text("platform-token-1\n")
    with connect(tmp_path, federated_token_file=token_file) as conn:
        conn.invoke("mail", "Get-Mailbox")
        token_file.write_text("platform-token-2")  # the platform rotated it
        later(monkeypatch, 3600)
        conn.invoke("mail", "Get-Mailbox")
        assert conn.status().method == "federated"
    assert authority.assertions() == ["platform-token-1", "platform-token-1", "platform-token-2"]
    assert {f["client_assertion_type"] for f in authority.token_requests} == {JWT_BEARER}


def test_a_federated_token_that_has_ended_is_refused_before_asking(
    authority: Authority, tmp_path: Path
) -> None:
    token_file = tmp_path / "federated-token"
    token_file.write_text(unsigned_jwt({"exp": int(time.time()) - 10}))
    with pytest.raises(SignInRequired, match=f"federated token in {token_file} has ended"):
        connect(tmp_path, federated_token_file=token_file)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        connect(tmp_path, federated_token_file=empty)
    assert authority.token_requests == []


# -- what is kept ------------------------------------------------------------------------------


def test_neither_the_cache_nor_the_profile_holds_the_key_or_the_password(
    authority: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    key = rsa_key()
    p12 = tmp_path / "app.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, certificate(key), None, serialization.BestAvailableEncryption(b"s3cret!")
        )
    )
    monkeypatch.setenv("BASTION_CERTIFICATE_PASSWORD", "s3cret!")
    profiles.add_profile("jobs", URL, TENANT, app_id=APP_ID, certificate=p12, config_dir=config)
    with bastion.connect(profile="jobs", config_dir=config, prompt=NobodyThere()) as conn:
        conn.invoke("mail", "Get-Mailbox")
        plain = json.dumps(conn.cache.load().to_json()) if conn.cache else ""
        cache_bytes = conn.cache.path.read_bytes() if conn.cache else b""
    profile_bytes = (config / "profiles.json").read_bytes()
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = "".join(key_pem(key).decode().splitlines()[1:-1])
    for kept in (plain.encode(), cache_bytes, profile_bytes):
        assert b"PRIVATE KEY" not in kept and b"s3cret!" not in kept
        assert body[:64].encode() not in kept and base64.b64encode(der)[:64] not in kept
    assert APP_ID in plain and '"refresh_token": null' in plain
    stored = json.loads(profile_bytes)["profiles"]["jobs"]
    assert stored["app_id"] == APP_ID and stored["certificate"] == str(p12)


def test_a_profile_remembers_the_application(authority: Authority, tmp_path: Path) -> None:
    config = tmp_path / "config"
    path = pem_file(tmp_path / "app.pem")
    profiles.add_profile("jobs", URL, TENANT, app_id=APP_ID, certificate=path, config_dir=config)
    found = profiles.get_profile("jobs", config)
    assert found.application is not None and found.application.certificate == path
    with bastion.connect(config_dir=config, interactive=True) as conn:  # the current profile
        assert conn.invoke("mail", "Get-Mailbox") == [{"identity": "alice"}]
    assert authority.token_requests[0]["client_id"] == APP_ID


# -- the certificate's end, and files that cannot be used --------------------------------------


def test_a_certificate_that_ends_soon_is_warned_about_once(
    authority: Authority, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = pem_file(tmp_path / "app.pem", days=10.5)
    with (
        caplog.at_level(logging.WARNING, logger="bastion.client"),
        connect(tmp_path, certificate=path) as conn,
    ):
        conn.invoke("mail", "Get-Mailbox")
    warnings = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("the certificate")
    ]
    assert len(warnings) == 1
    assert f"the certificate in {path} ends on" in warnings[0] and "in 10 days" in warnings[0]


def test_a_certificate_that_has_ended_is_an_error_naming_the_file(
    authority: Authority, tmp_path: Path
) -> None:
    path = pem_file(tmp_path / "old.pem", days=-2, started_days_ago=400)
    with pytest.raises(SignInRequired) as caught:
        connect(tmp_path, certificate=path)
    assert f"the certificate in {path} has ended" in caught.value.detail
    assert caught.value.exit_code == 4 and authority.token_requests == []
    future = pem_file(tmp_path / "future.pem", started_days_ago=-3)
    with pytest.raises(SignInRequired, match="is not valid yet"):
        connect(tmp_path, certificate=future)


def test_pkcs12_opens_with_the_password_from_the_environment_only(
    authority: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "app.pfx"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, certificate(key), None, serialization.BestAvailableEncryption(b"pw-123")
        )
    )
    with pytest.raises(ConfigError, match="BASTION_CERTIFICATE_PASSWORD is not set"):
        connect(tmp_path, certificate=path)
    monkeypatch.setenv("BASTION_CERTIFICATE_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match="password in BASTION_CERTIFICATE_PASSWORD is wrong"):
        connect(tmp_path, certificate=path)
    monkeypatch.setenv("BASTION_CERTIFICATE_PASSWORD", "pw-123")
    with connect(tmp_path, certificate=path) as conn:
        conn.invoke("mail", "Get-Mailbox")
    assert _part(authority.assertions()[0], 0)["alg"] == "ES256"


def _only_key(path: Path) -> Path:
    path.write_bytes(key_pem(rsa_key()))
    return path


def _only_cert(path: Path) -> Path:
    key = rsa_key()
    path.write_bytes(certificate(key).public_bytes(serialization.Encoding.PEM))
    return path


def _small_rsa(path: Path) -> Path:
    return pem_file(path, rsa_key(1024))


def _p384(path: Path) -> Path:
    return pem_file(path, ec.generate_private_key(ec.SECP384R1()))


def _other_cert(path: Path) -> Path:
    path.write_bytes(
        key_pem(rsa_key()) + certificate(rsa_key()).public_bytes(serialization.Encoding.PEM)
    )
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "cannot be read: No such file or directory"),
        (_only_key, "holds no certificate"),
        (_only_cert, "holds no private key"),
        (_small_rsa, "is an RSA key of 1024 bits"),
        (_p384, "is an EC key on secp384r1"),
        (_other_cert, "belongs to its private key"),
    ],
)
def test_a_certificate_file_that_cannot_be_used_is_named_with_the_reason(
    authority: Authority, tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path / "app.pem")
    with pytest.raises(ConfigError) as caught:
        connect(tmp_path, certificate=path)
    assert str(path) in caught.value.detail and message in caught.value.detail
    assert caught.value.exit_code == 2 and authority.token_requests == []


def test_a_refused_credential_is_a_failed_sign_in(authority: Authority, tmp_path: Path) -> None:
    authority.error = {"error": "invalid_client", "error_description": "unknown certificate"}
    with pytest.raises(SignInFailed, match="unknown certificate") as caught:
        connect(tmp_path, certificate=pem_file(tmp_path / "app.pem"))
    assert caught.value.exit_code == 4 and "registered" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"app_id": None, "certificate": "x.pem"}, "needs its ID"),
        ({"app_id": "nightly"}, "not an application ID"),
        ({}, "exactly one credential"),
        ({"certificate": "a.pem", "federated_token_file": "t"}, "exactly one credential"),
        ({"certificate": "a.pem", "method": "device"}, "not with the 'device' method"),
        ({"certificate": "a.pem", "token": "abc"}, "not with an access token"),
    ],
)
def test_an_application_needs_its_id_and_one_credential(
    authority: Authority, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        connect(tmp_path, **kwargs)
