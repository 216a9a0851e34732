"""An application's sign-in: client credentials with a signed or federated assertion (S7).

A scheduled job signs in as an application, never as a person, and is never asked
anything. For each service audience it asks the token endpoint (RFC 6749 section 4.4)::

    grant_type=client_credentials
    client_id={app ID}
    client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
    client_assertion={JWT}
    scope={audience}/.default

The assertion (RFC 7523 section 2.2) is, with a certificate, a JWT the client signs afresh
for every request (``iss`` = ``sub`` = the app ID, ``aud`` = the token endpoint, a random
``jti``, valid five minutes; ``PS256`` for an RSA key of 2048 bits or more, ``ES256`` for an
EC P-256 key; ``x5t#S256`` names the certificate); with a federated credential, the token a
platform writes to a file, read afresh every time because platforms rotate it.

There is no refresh token: a token near its end, or refused, is replaced by a new request
with a new assertion. The private key is read from its file when an assertion is signed and
kept nowhere else; a PKCS#12 file's password comes from ``$BASTION_CERTIFICATE_PASSWORD``
only (never from an argument, which other users of the machine could read).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bastion.client import oauth
from bastion.client.errors import ClientError, ConfigError, SignInFailed, SignInRequired

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from bastion.client.http import Http

log = logging.getLogger("bastion.client")

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PASSWORD_ENV = "BASTION_CERTIFICATE_PASSWORD"
#: how long a signed assertion is valid
ASSERTION_LIFETIME = 300
#: a certificate that ends sooner than this is warned about
WARN_BEFORE = dt.timedelta(days=30)

AppMethod = Literal["certificate", "federated"]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.DOTALL)
_KEY_BLOCKS = frozenset(
    {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
)
#: certificate files already warned about in this process (one warning each)
_warned: set[tuple[str, float]] = set()


@dataclass(frozen=True)
class AppCredential:
    """An application and how it proves itself: a certificate file, or a federated token
    file. Only their paths are kept (in a profile, too); never what they hold."""

    app_id: str
    certificate: Path | None = None
    federated_token_file: Path | None = None

    @property
    def method(self) -> AppMethod:
        return "certificate" if self.certificate is not None else "federated"

    @property
    def file(self) -> Path:
        found = self.certificate or self.federated_token_file
        assert found is not None
        return found

    def describe(self) -> str:
        if self.certificate is not None:
            return f"application {self.app_id} with the certificate {self.certificate}"
        return f"application {self.app_id} with the federated token in {self.federated_token_file}"


def credential(
    app_id: str | None,
    certificate: str | os.PathLike[str] | None = None,
    federated_token_file: str | os.PathLike[str] | None = None,
) -> AppCredential | None:
    """The application credential these arguments describe (None without any), checked:
    an app ID (a UUID) with exactly one of a certificate file or a federated token file.
    Relative paths are made absolute, so the profile works from any directory."""
    if app_id is None and certificate is None and federated_token_file is None:
        return None
    if not app_id:
        raise ConfigError(
            "a certificate or a federated token file signs in an application, which needs its ID.",
            hint="Give app_id=... (the application's client ID).",
            cli_hint="Give --app-id ID (the application's client ID).",
        )
    check_app_id(app_id)
    if (certificate is None) == (federated_token_file is None):
        raise ConfigError(
            f"application {app_id} needs exactly one credential: a certificate or a federated "
            "token file.",
            hint="Give certificate=FILE or federated_token_file=FILE.",
            cli_hint="Give --certificate FILE or --federated-token-file FILE.",
        )
    return AppCredential(
        app_id=app_id,
        certificate=_absolute(certificate) if certificate is not None else None,
        federated_token_file=(
            _absolute(federated_token_file) if federated_token_file is not None else None
        ),
    )


def check_app_id(app_id: str) -> str:
    try:
        uuid.UUID(app_id)
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(
            f"'{app_id}' is not an application ID.",
            hint="An application's ID (its client ID) is a UUID, as the directory shows it.",
        ) from None
    return app_id


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


# -- the certificate ----------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A certificate and its private key, loaded from their file for one assertion."""

    path: Path
    key: RSAPrivateKey | EllipticCurvePrivateKey
    der: bytes
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def alg(self) -> str:
        from cryptography.hazmat.primitives.asymmetric import rsa

        return "PS256" if isinstance(self.key, rsa.RSAPrivateKey) else "ES256"

    @property
    def thumbprint(self) -> str:
        """``x5t#S256``: the base64url SHA-256 of the certificate's DER (RFC 7515 4.1.8)."""
        return _b64(hashlib.sha256(self.der).digest())


def load_certificate(path: Path, *, now: float | None = None) -> Certificate:
    """The certificate and private key in ``path`` (PEM with both, or PKCS#12 whose
    password is ``$BASTION_CERTIFICATE_PASSWORD``), checked: the key is RSA of 2048 bits or
    more or EC P-256, the certificate is its own and valid now. A certificate that ends
    within 30 days is warned about (once per process)."""
    when = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"the certificate file {path} cannot be read: {exc.strerror or exc}.",
            hint="Give the path of a PEM file (private key and certificate) or a PKCS#12 file.",
        ) from None
    if b"-----BEGIN" in data:
        key, certificates = _from_pem(path, data)
    else:
        key, certificates = _from_pkcs12(path, data)
    _check_key(path, key)
    cert = _matching(path, key, certificates)
    from cryptography.hazmat.primitives.serialization import Encoding

    found = Certificate(
        path=path,
        key=key,  # checked by _check_key
        der=cert.public_bytes(Encoding.DER),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    _check_validity(found, when)
    return found


def _from_pem(path: Path, data: bytes) -> tuple[Any, list[Any]]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    keys: list[Any] = []
    certificates: list[Any] = []
    for block in _PEM_BLOCK.finditer(data):
        kind = block.group(1)
        if kind == b"CERTIFICATE":
            try:
                certificates.append(x509.load_pem_x509_certificate(block.group(0)))
            except ValueError:
                raise ConfigError(f"the certificate in {path} cannot be read.") from None
        elif kind in _KEY_BLOCKS:
            password = _password() if kind == b"ENCRYPTED PRIVATE KEY" else None
            if kind == b"ENCRYPTED PRIVATE KEY" and password is None:
                raise ConfigError(
                    f"the private key in {path} is encrypted and {PASSWORD_ENV} is not set.",
                    hint=f"Set {PASSWORD_ENV} to its password.",
                )
            try:
                keys.append(load_pem_private_key(block.group(0), password))
            except (ValueError, TypeError):
                raise ConfigError(
                    f"the private key in {path} cannot be read"
                    + (f" with the password in {PASSWORD_ENV}." if password else "."),
                ) from None
    if not keys:
        raise ConfigError(
            f"{path} holds no private key.",
            hint="The PEM file must hold the application's private key and its certificate.",
        )
    if not certificates:
        raise ConfigError(
            f"{path} holds no certificate.",
            hint="The PEM file must hold the application's private key and its certificate.",
        )
    return keys[0], certificates


def _from_pkcs12(path: Path, data: bytes) -> tuple[Any, list[Any]]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    password = _password()
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError):
        if password is None:
            raise ConfigError(
                f"{path} is neither a PEM file nor a PKCS#12 file that opens without a "
                f"password, and {PASSWORD_ENV} is not set.",
                hint=f"Set {PASSWORD_ENV} to the PKCS#12 file's password.",
            ) from None
        raise ConfigError(
            f"{path} cannot be opened: the password in {PASSWORD_ENV} is wrong, or the file "
            "is not a PKCS#12 file.",
            hint=f"Check {PASSWORD_ENV} and the file.",
        ) from None
    if key is None:
        raise ConfigError(f"{path} holds no private key.")
    if cert is None:
        raise ConfigError(f"{path} holds no certificate.")
    return key, [cert, *extra]


def _password() -> bytes | None:
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value else None


def _check_key(path: Path, key: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size >= 2048:
            return
        what = f"an RSA key of {key.key_size} bits"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return
        what = f"an EC key on {key.curve.name}"
    else:
        what = f"a {type(key).__name__.lstrip('_')}"
    raise ConfigError(
        f"the private key in {path} is {what}.",
        hint="An application's key is RSA of 2048 bits or more, or EC on P-256.",
    )


def _matching(path: Path, key: Any, certificates: list[Any]) -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def spki(public: Any) -> bytes:
        return bytes(public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))

    mine = spki(key.public_key())
    for cert in certificates:
        if spki(cert.public_key()) == mine:
            return cert
    raise ConfigError(
        f"no certificate in {path} belongs to its private key.",
        hint="Put the application's certificate next to its own private key.",
    )


def _check_validity(cert: Certificate, now: dt.datetime) -> None:
    hint = "Add a new certificate to the application in the directory and sign in with it."
    if cert.not_after <= now:
        raise SignInRequired(
            f"the certificate in {cert.path} has ended: it was valid until "
            f"{cert.not_after:%Y-%m-%d %H:%M} UTC.",
            hint=hint,
        )
    if cert.not_before > now:
        raise SignInRequired(
            f"the certificate in {cert.path} is not valid yet: it is valid from "
            f"{cert.not_before:%Y-%m-%d %H:%M} UTC.",
            hint="Check the machine's clock, or use a certificate that is valid now.",
        )
    if cert.not_after - now < WARN_BEFORE:
        mark = (str(cert.path), cert.not_after.timestamp())
        if mark not in _warned:
            _warned.add(mark)
            days = (cert.not_after - now).days
            log.warning(
                "the certificate in %s ends on %s UTC (%s); add a new one to the application "
                "before then.",
                cert.path,
                f"{cert.not_after:%Y-%m-%d %H:%M}",
                "in less than a day" if days == 0 else f"in {days} day{'s' * (days != 1)}",
            )


# -- the assertion ------------------------------------------------------------------------


def sign_assertion(cert: Certificate, app_id: str, audience: str, *, now: float) -> str:
    """A new client assertion (RFC 7523 section 3) signed with the certificate's key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    issued = int(now)
    header = {"alg": cert.alg, "typ": "JWT", "x5t#S256": cert.thumbprint}
    claims = {
        "iss": app_id,
        "sub": app_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode()
    if isinstance(cert.key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = cert.key.sign(signing_input, pss, hashes.SHA256())
    else:
        r, s = decode_dss_signature(cert.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{_b64(signature)}"


def read_federated_token(path: Path, *, now: float) -> str:
    """The token the platform wrote to ``path``, as it is now (platforms rotate it)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not text"
        raise ConfigError(
            f"the federated token file {path} cannot be read: {reason or exc}.",
            hint="Give the path where the platform writes the workload's token.",
        ) from None
    if not token:
        raise ConfigError(
            f"the federated token file {path} is empty.",
            hint="Give the path where the platform writes the workload's token.",
        )
    expires = oauth.claims(token).get("exp")
    if isinstance(expires, int | float) and expires <= now:
        ended = dt.datetime.fromtimestamp(expires, dt.UTC)
        raise SignInRequired(
            f"the federated token in {path} has ended (at {ended:%Y-%m-%d %H:%M:%S} UTC).",
            hint="The platform renews the file by itself; check that it still does.",
        )
    return token


def assertion(credential: AppCredential, token_endpoint: str, *, now: float) -> str:
    """The client assertion for one token request: freshly signed, or freshly read."""
    if credential.certificate is not None:
        cert = load_certificate(credential.certificate, now=now)
        return sign_assertion(cert, credential.app_id, token_endpoint, now=now)
    assert credential.federated_token_file is not None
    return read_federated_token(credential.federated_token_file, now=now)


# -- the token request --------------------------------------------------------------------

#: OAuth errors that mean the authority does not accept this application's credential
_REFUSED = frozenset({"invalid_client", "unauthorized_client", "invalid_grant", "access_denied"})


def request_token(
    http: Http, token_endpoint: str, credential: AppCredential, *, issuer: str, audience: str
) -> oauth.TokenSet:
    """An access token for ``audience``, asked with a new assertion."""
    form = {
        "grant_type": "client_credentials",
        "client_id": credential.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion(credential, token_endpoint, now=time.time()),
        "scope": f"{audience}/.default",
    }
    try:
        return oauth.token_request(
            http,
            token_endpoint,
            form,
            issuer=issuer,
            resource=audience,
            idempotent=False,  # an assertion's jti is used once: a retry signs a new one
            what=f"the sign-in of {credential.describe()}",
        )
    except ClientError as exc:
        if exc.type in _REFUSED:
            raise SignInFailed(
                exc.detail,
                hint="Check that the application exists and is enabled in this tenant and that "
                + (
                    "this certificate is registered with it."
                    if credential.certificate is not None
                    else "a federated credential of it matches this token's issuer, subject "
                    "and audience."
                ),
                status=exc.status,
                problem=exc.problem,
            ) from None
        raise


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())
