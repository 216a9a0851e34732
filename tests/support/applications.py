"""Applications' credentials for tests: certificates with their keys, signed client
assertions, and a stand-in OpenID provider on loopback that issues federated tokens."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    key: PrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def private_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def sha1_hex(self) -> str:
        return hashlib.sha1(self.der).hexdigest()

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def x5t_s256(self, *, padded: bool = True) -> str:
        return _b64(hashlib.sha256(self.der).digest(), padded)

    def x5t(self, *, padded: bool = True) -> str:
        return _b64(hashlib.sha1(self.der).digest(), padded)

    def x5c(self) -> list[str]:
        return [base64.b64encode(self.der).decode()]


def _b64(raw: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def make_certificate(
    key_type: str = "RSA",
    *,
    not_before: float | None = None,
    not_after: float | None = None,
    key: PrivateKey | None = None,
) -> KeyPair:
    """A self-signed certificate (RSA 2048 or P-256), valid from a day ago for a year unless
    told otherwise (times as Unix seconds)."""
    if key is None:
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if key_type == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )
    now = datetime.datetime.now(datetime.UTC)
    start = (
        datetime.datetime.fromtimestamp(not_before, datetime.UTC)
        if not_before is not None
        else now - datetime.timedelta(days=1)
    )
    end = (
        datetime.datetime.fromtimestamp(not_after, datetime.UTC)
        if not_after is not None
        else now + datetime.timedelta(days=365)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "job " + uuid.uuid4().hex[:8])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def jose_key(key: PrivateKey) -> RSAKey | ECKey:
    return RSAKey.import_key(key) if isinstance(key, rsa.RSAPrivateKey) else ECKey.import_key(key)


def sign(key: PrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A compact JWS of ``claims`` with ``header`` (its ``alg`` included), signed with ``key``."""
    payload = json.dumps(claims).encode()
    return jws.serialize_compact(header, payload, jose_key(key), algorithms=[header["alg"]])


def assertion_claims(
    app_id: str, audience: str | list[str], now: float, *, lifetime: float = 600
) -> dict[str, Any]:
    """What MSAL puts in a client assertion."""
    return {
        "iss": app_id,
        "sub": app_id,
        "aud": audience,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now + lifetime),
        "jti": str(uuid.uuid4()),
    }


def assertion(
    pair: KeyPair,
    app_id: str,
    audience: str | list[str],
    now: float,
    *,
    alg: str | None = None,
    lifetime: float = 600,
    header: dict[str, Any] | None = None,
    signing_key: PrivateKey | None = None,
    **claims: Any,
) -> str:
    """A client assertion as MSAL's certificate form makes it (``x5t#S256`` and ``x5c``),
    unless ``header`` says otherwise."""
    alg = alg or ("PS256" if isinstance(pair.key, rsa.RSAPrivateKey) else "ES256")
    head = header if header is not None else {"x5t#S256": pair.x5t_s256(), "x5c": pair.x5c()}
    body = assertion_claims(app_id, audience, now, lifetime=lifetime) | claims
    body = {name: value for name, value in body.items() if value is not None}  # None: left out
    return sign(signing_key or pair.key, {"alg": alg, "typ": "JWT", **head}, body)


@dataclass
class StandInIssuer:
    """A tiny OpenID provider on loopback: discovery and JWKS, its tokens signed by a test
    key. ``fetches`` counts the JWKS downloads."""

    url: str
    key: rsa.RSAPrivateKey
    kid: str
    fetches: list[str] = field(default_factory=list)

    def token(
        self,
        subject: str,
        audience: str | list[str],
        now: float,
        *,
        lifetime: float = 300,
        issuer: str | None = None,
        key: PrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        claims = {
            "iss": issuer or self.url,
            "sub": subject,
            "aud": audience,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + lifetime),
            "jti": str(uuid.uuid4()),
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        return sign(key or self.key, header, claims)


@contextmanager
def stand_in_issuer() -> Iterator[StandInIssuer]:
    """Serve an issuer at ``http://127.0.0.1:{port}/issuer`` until the block ends."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = "k-" + uuid.uuid4().hex[:8]
    public = RSAKey.import_key(key.public_key()).as_dict()
    public.update({"kid": kid, "use": "sig", "alg": "RS256"})
    state: dict[str, StandInIssuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = state["issuer"]
            if self.path == "/issuer/.well-known/openid-configuration":
                body: dict[str, Any] = {
                    "issuer": issuer.url,
                    "jwks_uri": issuer.url + "/keys",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            elif self.path == "/issuer/keys":
                issuer.fetches.append(self.path)
                body = {"keys": [public]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    state["issuer"] = StandInIssuer(f"http://127.0.0.1:{port}/issuer", key, kid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["issuer"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
