"""The command pipeline's path for applications, one step at a time, in process: an
application's access token makes a caller of kind ``app`` holding the roles of its role
groups; A8's second factor is not asked of it; a sensitive command is refused to it (403)
unless the tenant's policy names the role group that grants it. The same end to end is in
tests/e2e/test_application_commands.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bastion.authority.application_tokens import application_access_token
from bastion.authority.keys import create_signing_key
from bastion.core.config import Settings
from bastion.core.errors import InvalidToken, UsageError
from bastion.directory import applications, role_groups
from bastion.directory.role_groups import Grant, ScopeFilter
from bastion.directory.tenants import Tenant, TenantPolicy, create_tenant
from bastion.plane import tiers
from bastion.plane.call import Call, Incoming
from bastion.plane.command_context import Caller
from bastion.plane.command_errors import Forbidden
from bastion.plane.scope import EVERYTHING
from bastion.plane.service import built_in_roles
from bastion.plane.steps import assurance, authentication
from bastion.server.context import ServerContext
from bastion.services import SERVICES

REGISTRY = {service.name: {spec.name: spec for spec in service} for service in SERVICES}
ROLES = built_in_roles(SERVICES)
BASE = "https://bastion.localhost"
NOW = 1_800_000_000.0
TENANT = Tenant(id="t-1", name="contoso", display_name="Contoso")
ADMIN = Grant(role="Global Administrator", role_group="admins", scope=None)
SALES = ScopeFilter(department="Sales")
HELPDESK_IN_SALES = Grant(role="Helpdesk", role_group="sales-desk", scope=SALES)


def app_caller(*grants: Grant, tenant: Tenant = TENANT) -> Caller:
    return Caller(
        tenant=tenant,
        issuer=f"{BASE}/t/{tenant.name}",
        subject="app-1",
        name="Nightly export",
        client_id="0b3c9f5e-1111-4222-8333-444455556666",
        session_id="",
        amr=(),
        acr="",
        auth_time=0.0,
        grants=grants,
        kind="app",
    )


def incoming(name: str, *, service: str = "directory", token: str = "") -> Incoming:
    return Incoming(
        service=service,
        name=name,
        body=b"",
        authorization=f"Bearer {token}" if token else "",
        content_type="application/json",
        idempotency_key=None,
        base_url=BASE,
    )


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerContext]:
    opened = ServerContext.open(Settings(data_dir=tmp_path_factory.mktemp("app-pipeline")))
    yield opened
    opened.close()


def state(
    auth: ServerContext,
    command: str,
    who: Caller | None,
    *,
    service: str = "directory",
    raw: dict[str, Any] | None = None,
) -> Call:
    call = Call(
        auth=auth,
        incoming=incoming(command, service=service),
        commands=REGISTRY,
        roles=ROLES,
        now=NOW,
        started=time.perf_counter(),
    )
    call.found = REGISTRY[service].get(command)
    call.signed_in = who
    call.raw = dict(raw or {})
    return call


# --- assurance -----------------------------------------------------------------------------


def test_an_application_holding_a_role_is_not_asked_for_a_second_factor(
    auth: ServerContext,
) -> None:
    assurance.require_two_factors(state(auth, "Get-User", app_caller(ADMIN)))


def test_a_sensitive_command_is_forbidden_to_an_application_by_default(
    auth: ServerContext,
) -> None:
    call = state(auth, "Remove-User", app_caller(ADMIN), raw={"identity": "x"})
    with pytest.raises(Forbidden, match="Remove-User is sensitive") as refused:
        assurance.step_up(call)
    assert refused.value.status == 403
    assurance.step_up(state(auth, "Get-User", app_caller(ADMIN)))  # not sensitive


def test_the_policy_allows_a_role_groups_sensitive_commands_within_its_scope(
    auth: ServerContext,
) -> None:
    allowing = replace(TENANT, policy=TenantPolicy(app_sensitive_role_groups=("sales-desk",)))
    who = app_caller(ADMIN, HELPDESK_IN_SALES, tenant=allowing)
    call = state(auth, "Set-UserMfa", who, raw={"identity": "x", "state": "enabled"})
    call.allowed = EVERYTHING  # what authorize found from every grant
    assurance.step_up(call)
    assert call.scope.filters == (SALES,)  # the named role group's scope alone

    # the named role group does not grant Remove-User: the unnamed one does not count
    refused = state(auth, "Remove-User", who, raw={"identity": "x"})
    with pytest.raises(Forbidden):
        assurance.step_up(refused)

    # a scoped grant allows only commands that keep to a scope
    scoped_admin = Grant(role="Global Administrator", role_group="sales-desk", scope=SALES)
    whole = state(auth, "Remove-Group", app_caller(scoped_admin, tenant=allowing))
    with pytest.raises(Forbidden, match="whole tenant"):
        assurance.step_up(whole)


def test_the_policy_names_role_groups_only() -> None:
    with pytest.raises(UsageError):
        TenantPolicy(app_sensitive_role_groups=(" padded ",)).check()
    with pytest.raises(UsageError):
        TenantPolicy(app_sensitive_role_groups=tuple(f"g{i}" for i in range(40))).check()
    TenantPolicy(app_sensitive_role_groups=("Mail Recipients Administrator",)).check()
    stored = TenantPolicy(app_sensitive_role_groups=("a", "b")).to_json()
    assert TenantPolicy.from_json(stored).app_sensitive_role_groups == ("a", "b")
    assert TenantPolicy.from_json({}).app_sensitive_role_groups == ()


# --- authenticate --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered(auth: ServerContext) -> tuple[Tenant, applications.Application, Any]:
    """A tenant with an application in its Read-Only Reporting role group, and its key."""
    with auth.store.begin() as conn:
        tenant = create_tenant(conn, name="northwind", display_name="N", now=NOW, policy=None)
        create_signing_key(conn, auth.keyring, tenant.id, NOW)
        app = applications.create_application(
            conn, tenant_id=tenant.id, display_name="Nightly export", now=NOW
        )
        role_groups.ensure_built_in(conn, tenant.id, NOW, ROLES)
        group = role_groups.require_role_group(conn, tenant.id, "Read-Only Reporting")
        role_groups.add_member(conn, group, app.id, "app")
    with auth.store.read() as conn:
        key = auth.keys.active_key(conn, tenant.id)
    return tenant, app, key


def app_token(registered: tuple[Tenant, applications.Application, Any], service: str) -> str:
    tenant, app, key = registered
    token, _ = application_access_token(
        key,
        tenant=tenant,
        issuer=f"{BASE}/t/{tenant.name}",
        app=app,
        roles=["Read-Only Reporting"],
        audience=f"{BASE}/api/{service}",
        scope=f"{BASE}/api/{service}/.default",
        now=NOW,
    )
    return token


def test_an_applications_token_makes_an_application_caller(
    auth: ServerContext, registered: tuple[Tenant, applications.Application, Any]
) -> None:
    tenant, app, _ = registered
    sent = incoming("Get-User", token=app_token(registered, "directory"))
    with auth.store.read() as conn:
        who = authentication.caller_of(auth, sent, conn, now=NOW + 1)
    assert who.is_application and who.kind == "app"
    assert (who.subject, who.name, who.client_id) == (app.id, app.display_name, app.app_id)
    assert (who.amr, who.session_id, who.acr) == ((), "", "")
    assert who.roles == ("Read-Only Reporting",)
    assert who.tenant.id == tenant.id


def test_a_disabled_or_removed_applications_token_is_refused(
    auth: ServerContext, registered: tuple[Tenant, applications.Application, Any]
) -> None:
    _, app, _ = registered
    sent = incoming("Get-User", token=app_token(registered, "directory"))
    with auth.store.begin() as conn:
        applications.update_application(conn, app, enabled=False)
    try:
        with auth.store.read() as conn, pytest.raises(InvalidToken, match="disabled"):
            authentication.caller_of(auth, sent, conn, now=NOW + 1)
    finally:
        with auth.store.begin() as conn:
            applications.update_application(conn, app, enabled=True)
    with auth.store.begin() as conn:
        applications.update_application(conn, app, allowed_networks=["10.0.0.0/8"])
    try:
        with auth.store.read() as conn, pytest.raises(InvalidToken, match="allowed networks"):
            authentication.caller_of(auth, sent, conn, now=NOW + 1)
    finally:
        with auth.store.begin() as conn:
            applications.update_application(conn, app, clear_networks=True)


# --- privilege tiers -----------------------------------------------------------------------


def test_an_application_holding_a_role_is_changed_only_by_a_holder_of_it() -> None:
    helpdesk = Grant(role="Helpdesk", role_group="Helpdesk", scope=None)
    with pytest.raises(Forbidden, match="application Nightly export holds the role Global"):
        tiers.require_outranks_application([helpdesk], [ADMIN], "Nightly export")
    tiers.require_outranks_application([ADMIN], [ADMIN, helpdesk], "Nightly export")
    tiers.require_outranks_application([helpdesk], [], "Nightly export")
