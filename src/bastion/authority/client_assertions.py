"""Applications authenticating at the token endpoint with a signed JWT (``private_key_jwt``).

RFC 7523 section 2.2 and OpenID Connect Core section 9: the request carries
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a
``client_assertion`` JWT. Two kinds are accepted (docs/decisions/0036, 0037):

- **Signed by a registered certificate.** ``iss`` and ``sub`` are the appId. The key is found
  by the header's ``x5t#S256`` (base64url SHA-256 of the certificate's DER), ``x5t`` (SHA-1),
  ``kid`` (either thumbprint in hex, or the ``x5t#S256`` value) or ``x5c`` (its first
  certificate), padded or not; only a certificate registered on the application is ever used,
  so an ``x5c`` that is not registered is refused, never trusted. The algorithm is fixed by
  the certificate's key: PS256 or RS256 for RSA, ES256 for P-256; ``none`` and HMAC never.
  ``exp`` must be at most :data:`MAX_AHEAD` seconds ahead, so a stolen assertion is short
  lived. A repeated ``jti`` is accepted within the assertion's lifetime: MSAL sends one
  assertion for nine minutes (decision 0036).
- **A federated credential.** ``client_id`` names the application and ``iss`` is the issuer
  of one of its federated credentials; ``iss``, ``sub`` and ``aud`` must match that credential
  exactly, the signature must verify with a key the issuer publishes
  (:mod:`bastion.authority.federated_keys`, fetched before the transaction), and ``exp`` must
  be at most :data:`FEDERATED_MAX_AHEAD` seconds ahead.

Then, for both, the application must be enabled and the request's source address within its
allowed networks. Every refusal is :class:`AssertionRefused`: ``invalid_client`` (401) with a
description of what did not match, and a ``reason`` for the audit record.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import JWSRegistry
from sqlalchemy import Connection

from bastion.audit import events
from bastion.authority.clients import GRANT_CLIENT_CREDENTIALS, Client
from bastion.authority.federated_keys import FederatedKeys, FederatedKeysUnavailable
from bastion.core.errors import InvalidClient, InvalidRequest
from bastion.directory.applications import (
    Application,
    Certificate,
    FederatedCredential,
    by_app_id,
    certificate_by_thumbprint,
    matching_credentials,
    normalize_app_id,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: clocks may disagree by this much
CLOCK_SKEW = 60
#: a certificate-signed assertion's ``exp`` at most this far ahead (plus the skew)
MAX_AHEAD = 600
#: a federated token's ``exp`` at most this far ahead (plus the skew)
FEDERATED_MAX_AHEAD = 3600
#: the algorithms each key type of a registered certificate signs with
ALGORITHMS = {"RSA": ("PS256", "RS256"), "EC": ("ES256",)}
#: every algorithm an assertion may name; anything else (``none``, HMAC...) is refused first
ACCEPTED_ALGORITHMS = ("PS256", "RS256", "ES256")
#: the longest assertion read at all
MAX_ASSERTION = 16 * 1024

AUDIT_TYPE = "sign_in.application"

_HEX = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


class AssertionRefused(InvalidClient):
    """``invalid_client`` for an application's assertion. ``reason`` names the check that
    failed, for the audit record; the application, when it is known."""

    def __init__(
        self,
        detail: str,
        *,
        reason: str,
        app: Application | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(detail, hint=hint)
        self.reason = reason
        self.application = app


@dataclass(frozen=True)
class Assertion:
    """A client assertion as sent: its header and claims, not yet verified."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) and kid else None

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_assertion(token: str) -> Assertion:
    """The header and claims of a compact JWS, unverified; ``invalid_client`` if it is none."""
    parts = token.split(".")
    if len(token) > MAX_ASSERTION or len(parts) != 3:
        raise AssertionRefused("The client assertion is not a signed JWT.", reason="malformed")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, binascii.Error):
        raise AssertionRefused(
            "The client assertion is not a signed JWT.", reason="malformed"
        ) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRefused("The client assertion is not a signed JWT.", reason="malformed")
    return Assertion(token, header, claims)


def read_assertion(form_type: str, token: str) -> Assertion:
    """RFC 7521 section 4.2: the assertion type must be the JWT bearer one."""
    if form_type != ASSERTION_TYPE:
        raise InvalidRequest(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        )
    if not token:
        raise InvalidRequest("client_assertion is required with client_assertion_type.")
    return parse_assertion(token)


def federated_issuer(
    conn: Connection, tenant_id: str, client_id: str, assertion: Assertion
) -> str | None:
    """The issuer whose keys to fetch before checking ``assertion``: its ``iss`` when that
    is the issuer of a federated credential of the application ``client_id`` names; None
    otherwise (so an assertion can never make the server fetch an unregistered URL)."""
    iss = assertion.issuer
    if not client_id or not iss or normalize_app_id(iss) is not None:
        return None
    app = by_app_id(conn, tenant_id, client_id)
    if app is None or not matching_credentials(conn, app, issuer=iss):
        return None
    return iss


@dataclass(frozen=True)
class AuthenticatedApplication:
    """An application that proved itself, and with what."""

    application: Application
    #: the hex SHA-256 thumbprint of the certificate whose key signed the assertion
    thumbprint: str | None = None
    #: the federated credential the assertion matched
    federated: FederatedCredential | None = None

    @property
    def client(self) -> Client:
        """The application as the token endpoint's client: its appId, the one grant."""
        app = self.application
        return Client(
            tenant_id=app.tenant_id,
            client_id=app.app_id,
            name=app.display_name,
            secret_hash=None,
            redirect_uris=(),
            grant_types=(GRANT_CLIENT_CREDENTIALS,),
            first_party=False,
        )

    def credential(self) -> dict[str, Any]:
        """Which credential was used, for the audit record."""
        if self.federated is not None:
            return {
                "credential": "federated",
                "federated_issuer": self.federated.issuer,
                "federated_subject": self.federated.subject,
            }
        return {"credential": "certificate", "thumbprint": self.thumbprint}


def authenticate_application(
    conn: Connection,
    *,
    tenant_id: str,
    client_id: str,
    assertion: Assertion,
    audiences: Sequence[str],
    source: str | None,
    now: float,
    federated_keys: FederatedKeys,
) -> AuthenticatedApplication:
    """The application ``assertion`` proves to be; ``audiences`` are the values its ``aud``
    may take (the token endpoint's URL, the issuer) when a certificate signed it."""
    named = client_id or assertion.issuer or ""
    app = by_app_id(conn, tenant_id, named)
    if app is None:
        raise AssertionRefused(
            f"No application has the appId '{named[:64]}' in this tenant.",
            reason="unknown_application",
        )
    if client_id and assertion.issuer is not None and normalize_app_id(assertion.issuer) is None:
        authenticated = _federated(conn, app, assertion, now, federated_keys)
    elif assertion.issuer is not None and normalize_app_id(assertion.issuer) == app.app_id:
        authenticated = _certificate(conn, app, assertion, audiences, now)
    else:
        raise AssertionRefused(
            "The assertion's iss is neither the application's appId nor the issuer of one of "
            "its federated credentials.",
            reason="issuer_mismatch",
            app=app,
        )
    if not app.enabled:
        raise AssertionRefused(
            f"The application '{app.display_name}' is disabled.",
            reason="disabled",
            app=app,
            hint="Ask an administrator to enable it.",
        )
    if not app.allows_source(source):
        raise AssertionRefused(
            f"Requests from {source} are not within the application's allowed networks.",
            reason="source_not_allowed",
            app=app,
        )
    return authenticated


# -- signed by a registered certificate -------------------------------------------------------


def _certificate(
    conn: Connection,
    app: Application,
    assertion: Assertion,
    audiences: Sequence[str],
    now: float,
) -> AuthenticatedApplication:
    _require_accepted_alg(app, assertion)
    cert = _registered_certificate(conn, app, assertion)
    if now > cert.not_after:
        raise AssertionRefused(
            f"The certificate {cert.thumbprint} expired on {_when(cert.not_after)}.",
            reason="certificate_expired",
            app=app,
            hint="Register a new certificate and sign with its key.",
        )
    if now < cert.not_before:
        raise AssertionRefused(
            f"The certificate {cert.thumbprint} is not valid before {_when(cert.not_before)}.",
            reason="certificate_not_yet_valid",
            app=app,
        )
    if assertion.alg not in ALGORITHMS[cert.key_type]:
        raise AssertionRefused(
            f"The assertion is signed {assertion.alg}, but the certificate's {cert.key_type} "
            f"key signs {' or '.join(ALGORITHMS[cert.key_type])}.",
            reason="algorithm_mismatch",
            app=app,
        )
    key = _certificate_key(cert.pem)
    if key is None:  # pragma: no cover - registration accepts RSA and P-256 only
        raise AssertionRefused("The certificate's key is not usable.", reason="bad_key", app=app)
    claims = _verified_claims(app, assertion, key, f"the certificate {cert.thumbprint}")
    sub = claims.get("sub")
    if not isinstance(sub, str) or normalize_app_id(sub) != app.app_id:
        raise AssertionRefused(
            f"The assertion's sub {_shown(sub)} is not the application's appId {app.app_id}.",
            reason="subject_mismatch",
            app=app,
        )
    aud = _audience_list(claims.get("aud"))
    if not any(value in audiences for value in aud):
        raise AssertionRefused(
            f"The assertion's aud {_shown(claims.get('aud'))} is neither the token endpoint "
            f"{audiences[0]} nor the issuer.",
            reason="audience_mismatch",
            app=app,
        )
    _check_lifetime(app, claims, now, MAX_AHEAD)
    return AuthenticatedApplication(app, thumbprint=cert.thumbprint)


def _require_accepted_alg(app: Application, assertion: Assertion) -> None:
    if assertion.alg not in ACCEPTED_ALGORITHMS:
        raise AssertionRefused(
            f"The assertion's alg {_shown(assertion.header.get('alg'))} is not accepted; "
            f"sign with {', '.join(ACCEPTED_ALGORITHMS)}.",
            reason="algorithm_refused",
            app=app,
        )


def thumbprints_named(header: dict[str, Any]) -> list[str]:
    """The hex thumbprints (SHA-256 or SHA-1) the header names, in the order tried:
    ``x5t#S256``, ``x5t``, ``x5c``'s first certificate, ``kid``."""
    found: list[str] = []

    def add_b64(value: Any, sizes: tuple[int, ...]) -> None:
        if not isinstance(value, str) or not value or len(value) > 100:
            return
        try:
            raw = _b64decode(value.strip())
        except (ValueError, binascii.Error):
            return
        if len(raw) in sizes:
            found.append(raw.hex())

    add_b64(header.get("x5t#S256"), (32,))
    add_b64(header.get("x5t"), (20,))
    x5c = header.get("x5c")
    if isinstance(x5c, list) and x5c and isinstance(x5c[0], str):
        try:
            # RFC 7515 section 4.1.6: standard base64 (not base64url) of the DER
            der = base64.b64decode(x5c[0], validate=True)
        except (ValueError, binascii.Error):
            der = b""
        if der:
            found.append(hashlib.sha256(der).hexdigest())
    kid = header.get("kid")
    if isinstance(kid, str) and _HEX.fullmatch(kid.strip()):
        found.append(kid.strip().lower())
    else:
        add_b64(kid, (32, 20))
    return list(dict.fromkeys(found))


@functools.lru_cache(maxsize=1024)
def _certificate_key(pem: str) -> RSAKey | ECKey | None:
    """The public key of a registered certificate, parsed once per process: the PEM is the
    key (whether it is still registered is read from the database at every grant)."""
    public = x509.load_pem_x509_certificate(pem.encode()).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return RSAKey.import_key(public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECKey.import_key(public)
    return None


def _registered_certificate(
    conn: Connection, app: Application, assertion: Assertion
) -> Certificate:
    named = thumbprints_named(assertion.header)
    if not named:
        raise AssertionRefused(
            "The assertion's header names no certificate: send x5t#S256, x5t, kid or x5c.",
            reason="unknown_key",
            app=app,
        )
    for thumbprint in named:
        cert = certificate_by_thumbprint(conn, app, thumbprint)
        if cert is not None:
            return cert
    raise AssertionRefused(
        f"The assertion's key (thumbprint {named[0]}) is not a certificate of the application "
        f"'{app.display_name}': it was never registered, or it was removed.",
        reason="unknown_key",
        app=app,
        hint="Register the certificate, or sign with the key of one that is registered.",
    )


# -- a federated credential --------------------------------------------------------------------


def _federated(
    conn: Connection,
    app: Application,
    assertion: Assertion,
    now: float,
    federated_keys: FederatedKeys,
) -> AuthenticatedApplication:
    iss = assertion.issuer or ""
    credentials = matching_credentials(conn, app, issuer=iss)
    if not credentials:
        raise AssertionRefused(
            f"The assertion's iss {_shown(iss)} is not the issuer of a federated credential "
            f"of the application '{app.display_name}'.",
            reason="issuer_mismatch",
            app=app,
        )
    _require_accepted_alg(app, assertion)
    try:
        keys = federated_keys.keys(iss)
    except FederatedKeysUnavailable as exc:
        raise AssertionRefused(
            f"The federated issuer's keys are not available: {exc}.",
            reason="federated_keys_unavailable",
            app=app,
            hint="Try again in a minute.",
        ) from None
    key = _issuer_key(app, keys, assertion)
    claims = _verified_claims(app, assertion, key, f"the keys of {iss}")
    sub = claims.get("sub")
    same_subject = [c for c in credentials if c.subject == sub]
    if not same_subject:
        raise AssertionRefused(
            f"No federated credential of the application '{app.display_name}' has issuer "
            f"{iss} and subject {_shown(sub)}.",
            reason="subject_mismatch",
            app=app,
        )
    aud = claims.get("aud")
    matched = [c for c in same_subject if aud == c.audience or aud == [c.audience]]
    if not matched:
        raise AssertionRefused(
            f"The assertion's aud {_shown(aud)} is not the audience of the federated "
            f"credential ({same_subject[0].audience}).",
            reason="audience_mismatch",
            app=app,
        )
    _check_lifetime(app, claims, now, FEDERATED_MAX_AHEAD)
    return AuthenticatedApplication(app, federated=matched[0])


def _issuer_key(app: Application, keys: KeySet, assertion: Assertion) -> Any:
    kid = assertion.kid
    if kid is None:
        if len(keys.keys) == 1:
            return keys.keys[0]
        raise AssertionRefused(
            "The assertion names no kid, and its issuer publishes several keys.",
            reason="unknown_key",
            app=app,
        )
    for key in keys.keys:
        if key.kid == kid:
            return key
    raise AssertionRefused(
        f"The federated issuer publishes no key {_shown(kid)}.", reason="unknown_key", app=app
    )


# -- shared checks -----------------------------------------------------------------------------


def _verified_claims(
    app: Application, assertion: Assertion, key: Any, whose: str
) -> dict[str, Any]:
    try:
        verified = jws.deserialize_compact(
            assertion.token, key, registry=_AssertionRegistry([assertion.alg])
        )
        claims = json.loads(verified.payload)
    except (JoseError, ValueError):
        raise AssertionRefused(
            f"The assertion's signature does not verify with {whose}.",
            reason="bad_signature",
            app=app,
        ) from None
    if not isinstance(claims, dict):
        raise AssertionRefused("The assertion's payload is not a JSON object.", reason="malformed")
    return claims


class _AssertionRegistry(JWSRegistry):
    """The one algorithm chosen; a header as large as an assertion may be (MSAL's carries the
    certificate in ``x5c``, beyond joserfc's default 512 bytes); header parameters this
    module does not read are ignored (RFC 7515 section 4)."""

    max_header_length = MAX_ASSERTION

    def __init__(self, algorithms: list[str]) -> None:
        super().__init__(algorithms=algorithms, strict_check_header=False)


def _audience_list(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [value for value in aud if isinstance(value, str)]
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_lifetime(app: Application, claims: dict[str, Any], now: float, max_ahead: int) -> None:
    """``exp`` required, not past and at most ``max_ahead`` (+ skew) ahead; ``nbf`` and
    ``iat``, when present, not in the future (each with :data:`CLOCK_SKEW` seconds)."""
    exp = _number(claims.get("exp"))
    if exp is None:
        raise AssertionRefused(
            "The assertion has no exp (expiry).", reason="outside_lifetime", app=app
        )
    if now > exp + CLOCK_SKEW:
        raise AssertionRefused(
            f"The assertion expired {int(now - exp)} seconds ago (exp {_when(exp)}).",
            reason="outside_lifetime",
            app=app,
            hint="Sign a new assertion.",
        )
    if exp > now + max_ahead + CLOCK_SKEW:
        raise AssertionRefused(
            f"The assertion's exp is {int(exp - now)} seconds ahead; at most {max_ahead} "
            f"seconds (plus {CLOCK_SKEW} of clock skew) is accepted.",
            reason="outside_lifetime",
            app=app,
        )
    for name in ("nbf", "iat"):
        if name not in claims:
            continue
        value = _number(claims.get(name))
        if value is None:
            raise AssertionRefused(
                f"The assertion's {name} is not a number.", reason="outside_lifetime", app=app
            )
        if value > now + CLOCK_SKEW:
            raise AssertionRefused(
                f"The assertion's {name} is {int(value - now)} seconds in the future.",
                reason="outside_lifetime",
                app=app,
                hint="Check the clock of the machine that signs the assertion.",
            )


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _shown(value: Any) -> str:
    """A claim's value for a message: JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- audit ---------------------------------------------------------------------------------------


def record_sign_in(
    conn: Connection,
    authenticated: AuthenticatedApplication,
    *,
    audience: str,
    now: float,
) -> None:
    """S11: a token issued to an application is a sign-in record of it."""
    app = authenticated.application
    events.record(
        conn,
        tenant_id=app.tenant_id,
        type=AUDIT_TYPE,
        outcome="success",
        now=now,
        actor_id=app.id,
        actor_name=app.display_name,
        client_id=app.app_id,
        app_id=app.app_id,
        display_name=app.display_name,
        audience=audience,
        **authenticated.credential(),
    )


def record_refusal(
    conn: Connection, tenant_id: str, refused: AssertionRefused, *, client_id: str, now: float
) -> None:
    """A refused application sign-in, with what did not match (L1)."""
    app = refused.application
    events.record(
        conn,
        tenant_id=tenant_id,
        type=AUDIT_TYPE,
        outcome="failure",
        now=now,
        actor_id=app.id if app else None,
        actor_name=app.display_name if app else None,
        client_id=(app.app_id if app else client_id[:128]) or None,
        reason=refused.reason,
        detail=refused.detail,
    )
