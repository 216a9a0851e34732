"""Applications: jobs that sign in as themselves, with a certificate or a federated
credential, never a password (tables and queries).

An application has an ``appId`` (the client id it signs in with, a UUID), a display name
unique in its tenant, certificates (public part only; several at once, so rotation has no
gap) and federated credentials (an external OIDC issuer's exact ``iss``, ``sub`` and
``aud``). Like a user it holds roles only through role groups. ``valid_after`` ends every
access token issued before it: removing a certificate or a credential sets it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import ColumnElement, Connection, bindparam, delete, func, insert, select, update

from bastion.core.config import fetchable
from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.core.text import has_control
from bastion.directory import role_groups
from bastion.store.prepared import Prepared
from bastion.store.schema import application_certificates, applications, federated_credentials

#: the smallest RSA key a certificate may carry (NIST SP 800-131A)
MIN_RSA_BITS = 2048
#: the curve ES256 signs with (RFC 7518 section 3.4)
EC_CURVE = "secp256r1"
#: at most this many certificates and federated credentials per application
MAX_CREDENTIALS = 20
MAX_NETWORKS = 50


@dataclass(frozen=True)
class Application:
    id: str
    tenant_id: str
    app_id: str
    display_name: str
    enabled: bool
    #: None: tokens from anywhere; otherwise the networks tokens may be issued to and used from
    allowed_networks: tuple[str, ...] | None
    valid_after: float | None
    created_at: float

    def allows_source(self, address: str | None) -> bool:
        """Is a request from ``address`` within the allowed networks (always, with none)?"""
        if self.allowed_networks is None:
            return True
        if address is None:
            return False
        try:
            source = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(source in ipaddress.ip_network(net) for net in self.allowed_networks)


@dataclass(frozen=True)
class Certificate:
    """A registered certificate: what the token endpoint needs to check an assertion."""

    #: hex SHA-256 of the DER
    thumbprint: str
    #: hex SHA-1 of the DER
    thumbprint_sha1: str
    #: ``RSA`` | ``EC``
    key_type: str
    not_before: float
    not_after: float
    added_at: float
    #: PEM, public part only
    pem: str


@dataclass(frozen=True)
class FederatedCredential:
    id: str
    issuer: str
    subject: str
    audience: str
    created_at: float


def _to_application(row: Any) -> Application:
    networks = row.allowed_networks
    return Application(
        id=row.id,
        tenant_id=row.tenant_id,
        app_id=row.app_id,
        display_name=row.display_name,
        enabled=row.enabled,
        allowed_networks=tuple(networks) if networks is not None else None,
        valid_after=row.valid_after,
        created_at=row.created_at,
    )


def _to_certificate(row: Any) -> Certificate:
    return Certificate(
        thumbprint=row.thumbprint,
        thumbprint_sha1=row.thumbprint_sha1,
        key_type=row.key_type,
        not_before=row.not_before,
        not_after=row.not_after,
        added_at=row.added_at,
        pem=row.certificate,
    )


def _to_credential(row: Any) -> FederatedCredential:
    return FederatedCredential(
        id=row.id,
        issuer=row.issuer,
        subject=row.subject,
        audience=row.audience,
        created_at=row.created_at,
    )


# -- applications -------------------------------------------------------------------------


def display_name_of(text: str) -> str:
    name = text.strip()
    if not name or has_control(name) or len(name) > 256:
        raise UsageError(
            "an application's display name must be visible text of at most 256 characters.",
            parameter="display_name",
        )
    return name


def normalize_app_id(text: str) -> str | None:
    """An appId in its stored form (lower-case UUID), or None if ``text`` is not one."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def identity_filter(tenant_id: str, identity: str) -> ColumnElement[bool]:
    """The application an identity names in a tenant: its appId, its id or its display name
    (without regard to case)."""
    app_id = normalize_app_id(identity)
    which = func.lower(applications.c.display_name) == identity.strip().lower()
    if app_id is not None:
        which = which | (applications.c.app_id == app_id) | (applications.c.id == app_id)
    return (applications.c.tenant_id == tenant_id) & which


def find_application(conn: Connection, tenant_id: str, identity: str) -> Application | None:
    if has_control(identity):
        return None
    row = conn.execute(select(applications).where(identity_filter(tenant_id, identity))).first()
    return _to_application(row) if row else None


def require_application(conn: Connection, tenant_id: str, identity: str) -> Application:
    app = find_application(conn, tenant_id, identity)
    if app is None:
        raise NotFound(
            f"no application '{identity}' in this tenant.",
            hint="Get-Application lists applications.",
        )
    return app


def list_applications(conn: Connection, tenant_id: str) -> list[Application]:
    """A tenant's applications in display name order."""
    rows = conn.execute(
        select(applications)
        .where(applications.c.tenant_id == tenant_id)
        .order_by(func.lower(applications.c.display_name), applications.c.id)
    )
    return [_to_application(row) for row in rows]


#: built once and run through the driver (``Prepared``): every client credentials grant runs it
_BY_APP_ID = Prepared(
    select(applications).where(
        applications.c.tenant_id == bindparam("b_tenant"),
        applications.c.app_id == bindparam("b_app"),
    ),
    json_columns=frozenset({"allowed_networks"}),
    boolean_columns=frozenset({"enabled"}),
)


def by_app_id(conn: Connection, tenant_id: str, app_id: str) -> Application | None:
    """The application signing in with ``app_id`` (the token endpoint's client id)."""
    normalized = normalize_app_id(app_id)
    if normalized is None:
        return None
    row = next(iter(_BY_APP_ID.rows(conn, {"b_tenant": tenant_id, "b_app": normalized})), None)
    return _to_application(row) if row else None


def by_id(conn: Connection, tenant_id: str, application_id: str) -> Application | None:
    """The application an access token's ``sub`` names."""
    row = conn.execute(
        select(applications).where(
            applications.c.tenant_id == tenant_id, applications.c.id == application_id
        )
    ).first()
    return _to_application(row) if row else None


def create_application(
    conn: Connection, *, tenant_id: str, display_name: str, now: float
) -> Application:
    name = display_name_of(display_name)
    _require_free_name(conn, tenant_id, name)
    app = Application(
        id=new_id(),
        tenant_id=tenant_id,
        app_id=str(uuid.uuid4()),
        display_name=name,
        enabled=True,
        allowed_networks=None,
        valid_after=None,
        created_at=now,
    )
    conn.execute(
        insert(applications).values(
            id=app.id,
            tenant_id=tenant_id,
            app_id=app.app_id,
            display_name=name,
            enabled=True,
            allowed_networks=None,
            valid_after=None,
            created_at=now,
        )
    )
    return app


def _require_free_name(
    conn: Connection, tenant_id: str, name: str, *, but: str | None = None
) -> None:
    clash = conn.execute(
        select(applications.c.id).where(
            applications.c.tenant_id == tenant_id,
            func.lower(applications.c.display_name) == name.lower(),
        )
    ).first()
    if clash is not None and clash.id != but:
        raise Conflict(f"an application named '{name}' already exists.", parameter="display_name")


def update_application(
    conn: Connection,
    app: Application,
    *,
    display_name: str | None = None,
    enabled: bool | None = None,
    allowed_networks: Sequence[str] | None = None,
    clear_networks: bool = False,
) -> Application:
    """Change what is given; ``clear_networks`` lets tokens come from anywhere again."""
    values: dict[str, Any] = {}
    if display_name is not None:
        name = display_name_of(display_name)
        _require_free_name(conn, app.tenant_id, name, but=app.id)
        values["display_name"] = name
    if enabled is not None:
        values["enabled"] = enabled
    if clear_networks:
        values["allowed_networks"] = None
    elif allowed_networks is not None:
        values["allowed_networks"] = list(parse_networks(allowed_networks))
    if values:
        conn.execute(update(applications).where(applications.c.id == app.id).values(**values))
    row = conn.execute(select(applications).where(applications.c.id == app.id)).one()
    return _to_application(row)


def parse_networks(texts: Iterable[str]) -> tuple[str, ...]:
    """Networks in CIDR form (``10.0.0.0/8``; a bare address is its own /32 or /128), each
    in its canonical text, in the order given, without repeats."""
    found: dict[str, None] = {}
    for text in texts:
        for part in text.split(","):
            if not part.strip():
                continue
            try:
                network = ipaddress.ip_network(part.strip(), strict=False)
            except ValueError:
                raise UsageError(
                    f"'{part.strip()}' is not a network.",
                    hint="Give networks as address/prefix, such as 10.0.0.0/8 or 2001:db8::/32.",
                    parameter="allowed_networks",
                ) from None
            found[str(network)] = None
    if not found:
        raise UsageError("give at least one network.", parameter="allowed_networks")
    if len(found) > MAX_NETWORKS:
        raise UsageError(
            f"at most {MAX_NETWORKS} networks per application.", parameter="allowed_networks"
        )
    return tuple(found)


def end_tokens(conn: Connection, app: Application, now: float) -> None:
    """Refuse every access token issued to ``app`` until now."""
    conn.execute(update(applications).where(applications.c.id == app.id).values(valid_after=now))


def delete_application(conn: Connection, app: Application) -> None:
    """Remove an application: its certificates and credentials with it, and its place in
    every role group."""
    role_groups.forget_principal(conn, app.id)
    conn.execute(delete(applications).where(applications.c.id == app.id))


# -- certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCertificate:
    der: bytes
    pem: str
    thumbprint: str
    thumbprint_sha1: str
    key_type: str
    not_before: float
    not_after: float


def parse_certificate(text: str) -> ParsedCertificate:
    """A PEM X.509 certificate with an RSA (2048 bits or more) or P-256 key; its private key
    must not be sent."""
    if "PRIVATE KEY" in text:
        raise UsageError(
            "send the certificate only, never its private key.",
            hint="Keep the private key with the job; give the '-----BEGIN CERTIFICATE-----' part.",
            parameter="certificate",
        )
    try:
        cert = x509.load_pem_x509_certificate(text.strip().encode())
    except ValueError:
        raise UsageError(
            "the certificate is not a PEM X.509 certificate.",
            hint="Give the text from '-----BEGIN CERTIFICATE-----' to '-----END CERTIFICATE-----'.",
            parameter="certificate",
        ) from None
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UsageError(
                f"the certificate's RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} "
                "are needed.",
                parameter="certificate",
            )
        key_type = "RSA"
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == EC_CURVE:
        key_type = "EC"
    else:
        raise UsageError(
            "the certificate's key must be RSA (2048 bits or more) or EC on P-256.",
            parameter="certificate",
        )
    der = cert.public_bytes(serialization.Encoding.DER)
    return ParsedCertificate(
        der=der,
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        thumbprint=hashlib.sha256(der).hexdigest(),
        thumbprint_sha1=hashlib.sha1(der).hexdigest(),  # noqa: S324 - a name, not a check
        key_type=key_type,
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
    )


def add_certificate(
    conn: Connection, app: Application, cert: ParsedCertificate, now: float
) -> Certificate:
    if now > cert.not_after:
        raise UsageError("the certificate has expired.", parameter="certificate")
    if certificate_by_thumbprint(conn, app, cert.thumbprint) is not None:
        raise Conflict("this certificate is already registered.", parameter="certificate")
    if len(certificates(conn, app)) >= MAX_CREDENTIALS:
        raise Conflict(
            f"an application holds at most {MAX_CREDENTIALS} certificates.",
            hint="Remove one with Remove-ApplicationCertificate.",
        )
    conn.execute(
        insert(application_certificates).values(
            tenant_id=app.tenant_id,
            application_id=app.id,
            thumbprint=cert.thumbprint,
            thumbprint_sha1=cert.thumbprint_sha1,
            certificate=cert.pem,
            key_type=cert.key_type,
            not_before=cert.not_before,
            not_after=cert.not_after,
            added_at=now,
        )
    )
    return Certificate(
        thumbprint=cert.thumbprint,
        thumbprint_sha1=cert.thumbprint_sha1,
        key_type=cert.key_type,
        not_before=cert.not_before,
        not_after=cert.not_after,
        added_at=now,
        pem=cert.pem,
    )


def certificates(conn: Connection, app: Application) -> list[Certificate]:
    rows = conn.execute(
        select(application_certificates)
        .where(application_certificates.c.application_id == app.id)
        .order_by(application_certificates.c.added_at, application_certificates.c.thumbprint)
    )
    return [_to_certificate(row) for row in rows]


def certificate_by_thumbprint(
    conn: Connection, app: Application, thumbprint: str
) -> Certificate | None:
    """By hex SHA-256 (64 digits) or hex SHA-1 (40), without regard to case."""
    wanted = thumbprint.strip().lower()
    query = _BY_SHA1 if len(wanted) == 40 else _BY_SHA256
    row = next(iter(query.rows(conn, {"b_app": app.id, "b_thumbprint": wanted})), None)
    return _to_certificate(row) if row else None


#: built once and run through the driver: these run on every client credentials grant
_BY_SHA256 = Prepared(
    select(application_certificates).where(
        application_certificates.c.application_id == bindparam("b_app"),
        application_certificates.c.thumbprint == bindparam("b_thumbprint"),
    )
)
_BY_SHA1 = Prepared(
    select(application_certificates).where(
        application_certificates.c.application_id == bindparam("b_app"),
        application_certificates.c.thumbprint_sha1 == bindparam("b_thumbprint"),
    )
)


def remove_certificate(conn: Connection, app: Application, thumbprint: str, now: float) -> bool:
    """Remove a certificate and end the tokens issued until now. False if it was not there."""
    cert = certificate_by_thumbprint(conn, app, thumbprint)
    if cert is None:
        return False
    conn.execute(
        delete(application_certificates).where(
            application_certificates.c.application_id == app.id,
            application_certificates.c.thumbprint == cert.thumbprint,
        )
    )
    end_tokens(conn, app, now)
    return True


# -- federated credentials ----------------------------------------------------------------


def add_federated_credential(
    conn: Connection, app: Application, *, issuer: str, subject: str, audience: str, now: float
) -> FederatedCredential:
    for name, value in (("issuer", issuer), ("subject", subject), ("audience", audience)):
        if not value or has_control(value) or len(value) > 512 or value != value.strip():
            raise UsageError(
                f"the {name} must be visible text of at most 512 characters.", parameter=name
            )
    if not fetchable(issuer):
        raise UsageError(
            "the issuer must be an https:// URL (plain http only on a loopback address).",
            parameter="issuer",
        )
    existing = federated_credentials_of(conn, app)
    if any((c.issuer, c.subject, c.audience) == (issuer, subject, audience) for c in existing):
        raise Conflict("this federated credential is already registered.")
    if len(existing) >= MAX_CREDENTIALS:
        raise Conflict(f"an application holds at most {MAX_CREDENTIALS} federated credentials.")
    credential = FederatedCredential(new_id(), issuer, subject, audience, now)
    conn.execute(
        insert(federated_credentials).values(
            id=credential.id,
            tenant_id=app.tenant_id,
            application_id=app.id,
            issuer=issuer,
            subject=subject,
            audience=audience,
            created_at=now,
        )
    )
    return credential


def federated_credentials_of(conn: Connection, app: Application) -> list[FederatedCredential]:
    rows = conn.execute(
        select(federated_credentials)
        .where(federated_credentials.c.application_id == app.id)
        .order_by(federated_credentials.c.created_at, federated_credentials.c.id)
    )
    return [_to_credential(row) for row in rows]


def remove_federated_credential(
    conn: Connection, app: Application, *, issuer: str, subject: str, now: float
) -> int:
    """Remove the credentials with this issuer and subject (any audience) and end the tokens
    issued until now. The number removed."""
    result = conn.execute(
        delete(federated_credentials).where(
            federated_credentials.c.application_id == app.id,
            federated_credentials.c.issuer == issuer,
            federated_credentials.c.subject == subject,
        )
    )
    if result.rowcount:
        end_tokens(conn, app, now)
    return int(result.rowcount)


def matching_credentials(
    conn: Connection, app: Application, *, issuer: str
) -> list[FederatedCredential]:
    """The application's credentials naming ``issuer``, for checking a federated token."""
    return [c for c in federated_credentials_of(conn, app) if c.issuer == issuer]
