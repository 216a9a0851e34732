"""Services as objects (issue 11 item 3): a service is a :class:`Service` with its commands
declared on it, and the server is built from a list of them. Adding a service is one module
and one line in that list: here the module is this test's ``weather`` service, and the line
is ``services=[*SERVICES, weather]``. Its catalog, its audience and its commands come from
that list, through the same pipeline as every other service's; nothing is registered
anywhere else."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from pydantic import BaseModel, Field
from sqlalchemy import select

from bastion.authority.sign_in_sessions import ACR_TWO_FACTORS
from bastion.authority.tokens import sign
from bastion.core.config import Settings
from bastion.plane.command_context import CommandContext
from bastion.plane.service import Commands, Service, built_in_roles
from bastion.server.app import create_app
from bastion.server.bootstrap import new_tenant, new_user
from bastion.server.context import ServerContext
from bastion.services import SERVICES
from bastion.store.schema import audit_events

BASE = "http://localhost:8700"

# The new service's module: a Service, and its commands declared on it.

weather = Service("weather")


class Forecast(BaseModel):
    city: str
    sky: str


@weather.command("Get-Forecast")
def get_forecast(
    ctx: CommandContext,
    *,
    city: Annotated[str, Field(min_length=1, max_length=64, description="A city's name.")],
) -> Forecast:
    """Tomorrow's sky over a city."""
    return Forecast(city=city, sky="clear")


@dataclass(frozen=True)
class Tenant:
    auth: ServerContext
    id: str
    #: a bearer token per (role, service)
    tokens: dict[tuple[str, str], str]


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Tenant]:
    """A tenant with a Global Administrator and a Helpdesk user, and tokens for them."""
    auth = ServerContext.open(Settings(data_dir=tmp_path))
    try:
        now = int(auth.now())
        tokens: dict[tuple[str, str], str] = {}
        with auth.store.begin() as conn:
            made = new_tenant(auth, conn, name="skies", display_name="Skies")
            key = auth.keys.active_key(conn, made.id)
            for role in ("Global Administrator", "Helpdesk"):
                upn = role.split()[0].lower() + "@skies"
                user = new_user(
                    auth,
                    conn,
                    made,
                    upn=upn,
                    display_name=role,
                    password=None,
                    mfa_state="enforced",
                    roles=[role],
                )
                for service in ("weather", "directory"):
                    claims = {
                        "iss": f"{BASE}/t/skies",
                        "sub": user.id,
                        "aud": f"{BASE}/api/{service}",
                        "client_id": "bastion-cli",
                        "iat": now,
                        "nbf": now,
                        "exp": now + 300,
                        "jti": f"{upn}-{service}",
                        "auth_time": now,
                        "amr": ["pwd", "otp"],
                        "acr": ACR_TWO_FACTORS,
                        "preferred_username": upn,
                    }
                    tokens[(role, service)] = sign(key, "at+jwt", claims)
        yield Tenant(auth, made.id, tokens)
    finally:
        auth.close()


def call(
    auth: ServerContext,
    services: Sequence[Service],
    method: str,
    path: str,
    *,
    token: str | None = None,
    json: object = None,
) -> httpx.Response:
    """One request to an application built in this process from ``services``."""

    async def send() -> httpx.Response:
        app = create_app(auth, services=services)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            return await http.request(method, path, json=json, headers=headers)

    return asyncio.run(send())


def test_a_service_added_to_the_list_is_served_listed_and_authorized(tenant: Tenant) -> None:
    services = [*SERVICES, weather]
    auth = tenant.auth

    listed = call(auth, services, "GET", "/api/weather/commands")
    assert listed.status_code == 200
    catalog = listed.json()
    assert catalog["service"] == "weather"
    assert [c["name"] for c in catalog["commands"]] == ["Get-Forecast"]
    assert listed.headers["etag"] == f'"{catalog["version"]}"'

    discovery = call(auth, services, "GET", "/t/skies/.well-known/openid-configuration")
    audiences = discovery.json()["bastion_services"]
    assert list(audiences) == ["directory", "mail", "sites", "chat", "weather"]
    assert audiences["weather"] == f"{BASE}/api/weather"

    admin = tenant.tokens[("Global Administrator", "weather")]
    ran = call(
        auth,
        services,
        "POST",
        "/api/weather/commands/Get-Forecast",
        token=admin,
        json={"city": "Oslo"},
    )
    assert ran.status_code == 200, ran.text
    assert ran.json() == {"result": {"city": "Oslo", "sky": "clear"}}

    # A role that grants nothing of the new service is refused, and the refusal audited.
    helpdesk = tenant.tokens[("Helpdesk", "weather")]
    refused = call(
        auth,
        services,
        "POST",
        "/api/weather/commands/Get-Forecast",
        token=helpdesk,
        json={"city": "Oslo"},
    )
    assert refused.status_code == 403
    # A token for another service's audience is not one for this service.
    other = tenant.tokens[("Global Administrator", "directory")]
    wrong_audience = call(
        auth, services, "POST", "/api/weather/commands/Get-Forecast", token=other, json={}
    )
    assert wrong_audience.status_code == 401

    # A read's audit record is committed before its answer leaves (group commit).
    with auth.store.begin() as conn:
        rows = conn.execute(select(audit_events).where(audit_events.c.tenant_id == tenant.id)).all()
    recorded = [(r.type, r.outcome) for r in rows if r.data.get("service") == "weather"]
    assert sorted(recorded) == [
        ("command", "denied"),
        ("command", "success"),
        ("command.unauthenticated", "denied"),
    ]


def test_an_application_offers_only_the_services_of_its_list(tenant: Tenant) -> None:
    """Nothing is registered by importing a module: an application built without the
    weather service, after one built with it, neither serves nor announces it."""
    auth = tenant.auth
    assert call(auth, [*SERVICES, weather], "GET", "/api/weather/commands").status_code == 200
    assert call(auth, SERVICES, "GET", "/api/weather/commands").status_code == 404
    admin = tenant.tokens[("Global Administrator", "weather")]
    answer = call(
        auth, SERVICES, "POST", "/api/weather/commands/Get-Forecast", token=admin, json={}
    )
    assert answer.status_code == 404
    discovery = call(auth, SERVICES, "GET", "/t/skies/.well-known/openid-configuration")
    assert "weather" not in discovery.json()["bastion_services"]


def test_commands_declared_in_another_module_are_included_in_order() -> None:
    """A service whose commands live in several modules includes them, as the directory
    includes its audit log and role groups; their order is the catalog's."""
    parts = Commands()

    @parts.command("Get-Wind")
    def get_wind(ctx: CommandContext) -> str:
        """The wind."""
        return "calm"

    sky = Service("sky")

    @sky.command("Get-Cloud")
    def get_cloud(ctx: CommandContext) -> str:
        """The clouds."""
        return "none"

    before, _ = sky.catalog()
    sky.include(parts)
    assert [spec.name for spec in sky] == ["Get-Cloud", "Get-Wind"]
    assert {spec.service for spec in sky} == {"sky"}
    assert parts["Get-Wind"].service == ""  # the included commands themselves are unchanged
    after, _ = sky.catalog()
    assert after != before and b"Get-Wind" in after  # the catalog belongs to the object
    with pytest.raises(ValueError, match="already"):
        sky.include(parts)
    with pytest.raises(ValueError, match="Verb-Noun"):
        sky.command("Forecast")
    with pytest.raises(ValueError, match="service name"):
        Service("Weather Service")


def test_the_server_list_holds_every_service_once_with_its_commands() -> None:
    names = [service.name for service in SERVICES]
    assert names == ["directory", "mail", "sites", "chat"]
    directory = SERVICES[0]
    commands = [spec.name for spec in directory]
    # the audit log's commands first and role groups' last, as the catalog always had them
    assert commands[:2] == ["Search-AuditLog", "Export-AuditLog"]
    assert commands[-1] == "Remove-RoleGroupMember"
    assert all(spec.service == service.name for service in SERVICES for spec in service)


def test_every_built_in_role_names_services_of_the_list() -> None:
    """The built-in roles name services by name: none names a service the server lacks."""
    names = {service.name for service in SERVICES}
    for role, entries in built_in_roles(SERVICES).items():
        for entry in entries:
            assert entry.service == "*" or entry.service in names, role
            service = next((s for s in SERVICES if s.name == entry.service), None)
            if service is not None and "*" not in entry.command:
                assert service.get(entry.command) is not None, (role, entry.command)
