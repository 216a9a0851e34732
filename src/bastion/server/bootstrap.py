"""Creating a tenant with everything it needs, and its users, outside any request."""

from __future__ import annotations

from sqlalchemy import Connection

from bastion.authority import credentials
from bastion.authority.client_registration import register_cli_client
from bastion.authority.keys import create_signing_key
from bastion.authority.passwords import check_new_password, context_words
from bastion.authority.sign_in_sessions import revoke_user_sessions
from bastion.directory import chat_policies, role_groups, users
from bastion.directory.tenants import Tenant, TenantPolicy, create_tenant, get_tenant_by_id
from bastion.plane.service import built_in_roles
from bastion.server.context import ServerContext
from bastion.services import SERVICES

#: the built-in roles of the server's services: each tenant has a role group for each
ROLE_NAMES: tuple[str, ...] = tuple(built_in_roles(SERVICES))


def new_tenant(
    auth: ServerContext,
    conn: Connection,
    *,
    name: str,
    display_name: str | None,
    policy: TenantPolicy | None = None,
) -> Tenant:
    """A tenant with its signing key and the ``bastion-cli`` client; no accounts (X5)."""
    now = auth.now()
    tenant = create_tenant(
        conn, name=name, display_name=display_name or name, now=now, policy=policy
    )
    create_signing_key(conn, auth.keyring, tenant.id, now)
    register_cli_client(conn, auth.keyring, tenant.id, now)
    role_groups.ensure_built_in(conn, tenant.id, now, ROLE_NAMES)
    chat_policies.ensure_global_policies(conn, tenant.id, now)
    return tenant


def new_user(
    auth: ServerContext,
    conn: Connection,
    tenant: Tenant,
    *,
    upn: str,
    display_name: str | None,
    password: str | None,
    mfa_state: str,
    roles: list[str] | None = None,
) -> users.User:
    if password is not None:
        check_new_password(
            password, context_words(tenant.name, tenant.display_name, upn, display_name or "")
        )
    user = users.create_user(
        conn,
        tenant_id=tenant.id,
        upn=upn,
        display_name=display_name,
        password_hash=auth.hasher.hash(password) if password is not None else None,
        mfa_state=mfa_state,
        now=auth.now(),
    )
    for role in roles or []:
        users.add_role(conn, user, role, auth.now(), ROLE_NAMES)
    return user


def set_password(auth: ServerContext, conn: Connection, user: users.User, password: str) -> None:
    """An operator's reset: the new password, and every sign-in of the user ended (S5)."""
    tenant = get_tenant_by_id(conn, user.tenant_id)
    check_new_password(
        password, context_words(tenant.name, tenant.display_name, user.upn, user.display_name)
    )
    credentials.set_password_hash(conn, user, auth.hasher.hash(password))
    revoke_user_sessions(conn, user.id, auth.now())


def disable_user(auth: ServerContext, conn: Connection, user: users.User) -> int:
    """Disable and end every session at once (S5); returns how many sessions ended."""
    users.set_enabled(conn, user, False)
    return revoke_user_sessions(conn, user.id, auth.now())
