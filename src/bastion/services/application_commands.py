"""Application commands of the directory service: jobs that sign in as themselves with a
certificate or a federated credential (docs/decisions/0039).

Only a Global Administrator runs the commands that change applications; every reader of the
directory may list them (nothing secret is stored: certificates are public parts). An
application holds roles only through role groups (``Add-RoleGroupMember``); changing one
that holds roles, its credentials or its networks, or removing it, needs every role it
holds (privilege tiers, ``bastion.plane.tiers``). Removing a credential, and removing the
application, ends the tokens already issued to it; adding a credential, and removing
anything, is sensitive (a recent second factor).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from bastion.core.errors import NotFound, UsageError
from bastion.directory import applications
from bastion.directory.applications import Application
from bastion.directory.role_groups import grants_of_application
from bastion.plane import tiers
from bastion.plane.command_context import CommandContext
from bastion.plane.service import Commands

#: the directory service's commands for applications (``bastion.services.directory`` includes them)
commands = Commands()

AppIdentity = Annotated[
    str,
    Field(min_length=1, max_length=256, description="The application's appId or display name."),
]
DisplayName = Annotated[
    str, Field(min_length=1, max_length=256, description="The application's display name.")
]
Issuer = Annotated[str, Field(min_length=1, max_length=512, description="The external issuer.")]
Subject = Annotated[
    str, Field(min_length=1, max_length=512, description="Its tokens' exact sub claim.")
]
SECONDS_PER_DAY = 86400


class CertificateOut(BaseModel):
    #: hex SHA-256 of the certificate's DER
    thumbprint: str
    #: hex SHA-1 of the DER (what older tools call the thumbprint)
    thumbprintSha1: str
    keyType: str
    notBefore: datetime
    notAfter: datetime
    addedAt: datetime


class FederatedCredentialOut(BaseModel):
    id: str
    issuer: str
    subject: str
    audience: str
    createdAt: datetime


class ApplicationOut(BaseModel):
    id: str
    appId: str
    displayName: str
    enabled: bool
    #: None: from anywhere
    allowedNetworks: list[str] | None
    createdAt: datetime
    #: the roles it holds, through the role groups it is in
    roles: list[str]
    roleGroups: list[str]
    certificates: list[CertificateOut]
    federatedCredentials: list[FederatedCredentialOut]


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _certificate_out(cert: applications.Certificate) -> CertificateOut:
    return CertificateOut(
        thumbprint=cert.thumbprint,
        thumbprintSha1=cert.thumbprint_sha1,
        keyType=cert.key_type,
        notBefore=_time(cert.not_before),
        notAfter=_time(cert.not_after),
        addedAt=_time(cert.added_at),
    )


def _out(ctx: CommandContext, app: Application) -> ApplicationOut:
    grants = grants_of_application(ctx.conn, app.id)
    return ApplicationOut(
        id=app.id,
        appId=app.app_id,
        displayName=app.display_name,
        enabled=app.enabled,
        allowedNetworks=list(app.allowed_networks) if app.allowed_networks is not None else None,
        createdAt=_time(app.created_at),
        roles=sorted({grant.role for grant in grants}),
        roleGroups=sorted({grant.role_group for grant in grants}),
        certificates=[_certificate_out(c) for c in applications.certificates(ctx.conn, app)],
        federatedCredentials=[
            FederatedCredentialOut(
                id=c.id,
                issuer=c.issuer,
                subject=c.subject,
                audience=c.audience,
                createdAt=_time(c.created_at),
            )
            for c in applications.federated_credentials_of(ctx.conn, app)
        ],
    )


def _changeable(ctx: CommandContext, identity: str) -> Application:
    """An application the caller may change: holding no role the caller does not hold."""
    app = applications.require_application(ctx.conn, ctx.tenant.id, identity)
    tiers.require_outranks_application(
        ctx.caller.grants, grants_of_application(ctx.conn, app.id), app.display_name
    )
    return app


@commands.command("Get-Application")
def get_application(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None,
        Field(max_length=256, description="Only this application: its appId or display name."),
    ] = None,
    certificates_expiring_within_days: Annotated[
        int | None,
        Field(
            ge=0,
            le=3650,
            description="Only applications with a certificate that ends within this many days.",
        ),
    ] = None,
) -> list[ApplicationOut]:
    """Applications in display name order, with their certificates (thumbprints and end
    dates), federated credentials, networks and roles; or one with -Identity."""
    if identity is not None:
        found = [applications.require_application(ctx.conn, ctx.tenant.id, identity)]
    else:
        found = applications.list_applications(ctx.conn, ctx.tenant.id)
    listed = [_out(ctx, app) for app in found]
    if certificates_expiring_within_days is not None:
        horizon = _time(ctx.now + certificates_expiring_within_days * SECONDS_PER_DAY)
        listed = [a for a in listed if any(c.notAfter <= horizon for c in a.certificates)]
    return listed


@commands.command("New-Application")
def new_application(ctx: CommandContext, *, display_name: DisplayName) -> ApplicationOut:
    """Register an application: a job that signs in as itself. It gets an appId (its client
    id) and no credential yet: add a certificate or a federated credential, then a role."""
    app = applications.create_application(
        ctx.conn, tenant_id=ctx.tenant.id, display_name=display_name, now=ctx.now
    )
    return _out(ctx, app)


@commands.command("Set-Application")
def set_application(
    ctx: CommandContext,
    *,
    identity: AppIdentity,
    display_name: Annotated[
        str | None, Field(min_length=1, max_length=256, description="A new display name.")
    ] = None,
    enabled: Annotated[
        bool | None,
        Field(description="false: no new token, and its tokens stop working at once."),
    ] = None,
    allowed_networks: Annotated[
        list[str] | None,
        Field(
            min_length=1,
            max_length=applications.MAX_NETWORKS,
            description="The only networks (CIDR, e.g. 10.0.0.0/8; commas allowed) it may get "
            "tokens from and run commands from.",
        ),
    ] = None,
    clear_networks: Annotated[
        bool, Field(description="Let it get tokens and run commands from anywhere again.")
    ] = False,
) -> ApplicationOut:
    """Rename, disable or enable an application, or limit where it may sign in from."""
    if clear_networks and allowed_networks is not None:
        raise UsageError(
            "give allowed_networks or clear_networks, not both.", parameter="clear_networks"
        )
    app = _changeable(ctx, identity)
    changed = applications.update_application(
        ctx.conn,
        app,
        display_name=display_name,
        enabled=enabled,
        allowed_networks=allowed_networks,
        clear_networks=clear_networks,
    )
    return _out(ctx, changed)


@commands.command("Remove-Application", sensitive=True)
def remove_application(ctx: CommandContext, *, identity: AppIdentity) -> ApplicationOut:
    """Delete an application: its credentials go, it leaves every role group, and its
    tokens stop working at once."""
    app = _changeable(ctx, identity)
    removed = _out(ctx, app)
    applications.delete_application(ctx.conn, app)
    return removed


class CertificateAdded(CertificateOut):
    applicationId: str
    appId: str


@commands.command("Add-ApplicationCertificate", sensitive=True)
def add_application_certificate(
    ctx: CommandContext,
    *,
    identity: AppIdentity,
    certificate: Annotated[
        str,
        Field(
            min_length=1,
            max_length=16384,
            description="The certificate in PEM (its public part only): RSA 2048+ or P-256.",
        ),
    ],
) -> CertificateAdded:
    """Register a certificate the application signs its client assertions with. Keep the
    private key with the job; several certificates at once let it rotate without a gap."""
    app = _changeable(ctx, identity)
    added = applications.add_certificate(
        ctx.conn, app, applications.parse_certificate(certificate), ctx.now
    )
    return CertificateAdded(
        **_certificate_out(added).model_dump(), applicationId=app.id, appId=app.app_id
    )


@commands.command("Remove-ApplicationCertificate", sensitive=True)
def remove_application_certificate(
    ctx: CommandContext,
    *,
    identity: AppIdentity,
    thumbprint: Annotated[
        str,
        Field(
            max_length=64,
            pattern="^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$",
            description="The certificate's thumbprint: hex SHA-256, or hex SHA-1.",
        ),
    ],
) -> ApplicationOut:
    """Remove a certificate. Every token the application holds stops working: it gets a new
    one with a certificate it still has."""
    app = _changeable(ctx, identity)
    if not applications.remove_certificate(ctx.conn, app, thumbprint, ctx.now):
        raise NotFound(
            f"the application {app.display_name} has no certificate {thumbprint}.",
            hint="Get-Application -Identity lists its certificates.",
            parameter="thumbprint",
        )
    return _out(ctx, app)


@commands.command("Add-ApplicationFederatedCredential", sensitive=True)
def add_application_federated_credential(
    ctx: CommandContext,
    *,
    identity: AppIdentity,
    issuer: Annotated[
        str, Field(min_length=1, max_length=512, description="The external issuer (https URL).")
    ],
    subject: Subject,
    audience: Annotated[
        str, Field(min_length=1, max_length=512, description="Its tokens' exact aud claim.")
    ],
) -> ApplicationOut:
    """Trust tokens of an external OpenID issuer (a CI system) with exactly this subject and
    audience as the application's client assertion: no secret to store."""
    app = _changeable(ctx, identity)
    applications.add_federated_credential(
        ctx.conn, app, issuer=issuer, subject=subject, audience=audience, now=ctx.now
    )
    return _out(ctx, app)


@commands.command("Remove-ApplicationFederatedCredential", sensitive=True)
def remove_application_federated_credential(
    ctx: CommandContext, *, identity: AppIdentity, issuer: Issuer, subject: Subject
) -> ApplicationOut:
    """Stop trusting an external issuer's tokens with this subject; the application's
    tokens stop working."""
    app = _changeable(ctx, identity)
    removed = applications.remove_federated_credential(
        ctx.conn, app, issuer=issuer, subject=subject, now=ctx.now
    )
    if not removed:
        raise NotFound(
            f"the application {app.display_name} has no federated credential from {issuer} "
            f"for {subject}.",
            hint="Get-Application -Identity lists its federated credentials.",
            parameter="subject",
        )
    return _out(ctx, app)
