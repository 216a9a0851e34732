"""Tenants and their sign-in policy."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.store.schema import tenants

NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

#: The second factors Bastion knows. WebAuthn and push come later.
KNOWN_METHODS = ("totp",)

#: NIST SP 800-63B-4 section 2.2.3: an AAL2 session lasts at most 24 h, 1 h idle.
MAX_SESSION_SECONDS = 24 * 3600
MAX_IDLE_SECONDS = 3600
#: the slowest device polling a tenant may ask for (RFC 8628 interval)
MAX_DEVICE_POLL_INTERVAL = 60
#: at most this many role groups whose sensitive commands applications may run
MAX_APP_SENSITIVE_ROLE_GROUPS = 32


@dataclass(frozen=True)
class TenantPolicy:
    """What a tenant's administrators may tune. Limits only ever shorten NIST's maxima."""

    #: second-factor methods users may register and use
    allowed_methods: tuple[str, ...] = ("totp",)
    #: absolute lifetime of a sign-in session (and of every refresh token from it)
    session_lifetime: int = MAX_SESSION_SECONDS
    #: a sign-in session unused for this long ends
    idle_timeout: int = MAX_IDLE_SECONDS
    #: lifetime of access tokens, in seconds
    access_token_lifetime: int = 900
    #: a sensitive command needs a second factor younger than this (RFC 9470 max_age)
    step_up_window: int = 600
    #: lifetime of a device code (RFC 8628 expires_in)
    device_code_lifetime: int = 600
    #: minimum polling interval for the device grant (RFC 8628 interval)
    device_poll_interval: int = 5
    #: the role groups whose sensitive commands applications may run: an application has no
    #: second factor to step up with, so by default a sensitive command is refused to it
    app_sensitive_role_groups: tuple[str, ...] = ()

    def check(self) -> None:
        unknown = set(self.allowed_methods) - set(KNOWN_METHODS)
        if unknown:
            raise UsageError(
                f"unknown MFA method(s): {', '.join(sorted(unknown))}.",
                hint=f"Known methods: {', '.join(KNOWN_METHODS)}.",
            )
        if not 60 <= self.session_lifetime <= MAX_SESSION_SECONDS:
            raise UsageError(
                f"session lifetime must be between 60 and {MAX_SESSION_SECONDS} seconds."
            )
        # Each limit is checked on its own: a sign-in ends at the first limit it reaches, so
        # an idle timeout or a step-up window longer than the session lifetime is harmless
        # (it never bites), and shortening one limit never makes another one wrong.
        if not 60 <= self.idle_timeout <= MAX_IDLE_SECONDS:
            raise UsageError(f"idle timeout must be between 60 and {MAX_IDLE_SECONDS} seconds.")
        if not 1 <= self.access_token_lifetime <= 3600:
            raise UsageError("access token lifetime must be between 1 and 3600 seconds.")
        if not 0 <= self.step_up_window <= MAX_SESSION_SECONDS:
            raise UsageError(f"step-up window must be between 0 and {MAX_SESSION_SECONDS} seconds.")
        if not 60 <= self.device_code_lifetime <= 1800:
            raise UsageError("device code lifetime must be between 60 and 1800 seconds.")
        if not 1 <= self.device_poll_interval <= MAX_DEVICE_POLL_INTERVAL:
            raise UsageError(
                f"device poll interval must be between 1 and {MAX_DEVICE_POLL_INTERVAL} seconds."
            )
        names = self.app_sensitive_role_groups
        if len(names) > MAX_APP_SENSITIVE_ROLE_GROUPS or any(
            not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > 256
            for name in names
        ):
            raise UsageError(
                "the role groups whose sensitive commands applications may run must be at most "
                f"{MAX_APP_SENSITIVE_ROLE_GROUPS} role group names.",
                hint="Give role group names as Get-RoleGroup shows them, separated by commas.",
            )

    def outlived(self) -> list[str]:
        """The limits that cannot take effect because the session lifetime is shorter."""
        return [
            name
            for name, value in (
                ("idle timeout", self.idle_timeout),
                ("step-up window", self.step_up_window),
            )
            if value > self.session_lifetime
        ]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_methods"] = list(self.allowed_methods)
        data["app_sensitive_role_groups"] = list(self.app_sensitive_role_groups)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TenantPolicy:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if "allowed_methods" in values:
            values["allowed_methods"] = tuple(values["allowed_methods"])
        if "app_sensitive_role_groups" in values:
            values["app_sensitive_role_groups"] = tuple(values["app_sensitive_role_groups"])
        return cls(**values)


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    display_name: str
    policy: TenantPolicy = field(default_factory=TenantPolicy)


def _row_to_tenant(row: Any) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        policy=TenantPolicy.from_json(row.policy),
    )


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"'{name}' is not a valid tenant name.",
            hint="Use 1-63 lower-case letters, digits and dashes, starting with a letter or digit.",
        )


def create_tenant(
    conn: Connection, *, name: str, display_name: str, now: float, policy: TenantPolicy | None
) -> Tenant:
    check_name(name)
    policy = policy or TenantPolicy()
    policy.check()
    if find_tenant(conn, name) is not None:
        raise Conflict(f"tenant '{name}' already exists.")
    tenant = Tenant(id=new_id(), name=name, display_name=display_name, policy=policy)
    conn.execute(
        insert(tenants).values(
            id=tenant.id,
            name=name,
            display_name=display_name,
            policy=policy.to_json(),
            created_at=now,
        )
    )
    return tenant


def find_tenant(conn: Connection, name: str) -> Tenant | None:
    if not NAME_PATTERN.match(name):
        return None
    row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    return _row_to_tenant(row) if row else None


def get_tenant(conn: Connection, name: str) -> Tenant:
    tenant = find_tenant(conn, name)
    if tenant is None:
        raise NotFound(f"tenant '{name}' does not exist.", hint="Check the tenant name.")
    return tenant


def get_tenant_by_id(conn: Connection, tenant_id: str) -> Tenant:
    row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
    if row is None:
        raise NotFound("tenant does not exist.")
    return _row_to_tenant(row)


def list_tenants(conn: Connection) -> list[Tenant]:
    return [_row_to_tenant(r) for r in conn.execute(select(tenants).order_by(tenants.c.name))]


def set_policy(conn: Connection, tenant: Tenant, **changes: Any) -> Tenant:
    policy = replace(tenant.policy, **{k: v for k, v in changes.items() if v is not None})
    policy.check()
    conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(policy=policy.to_json()))
    return replace(tenant, policy=policy)
