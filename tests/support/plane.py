"""Calling the command plane over HTTP from tests, as any client would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.flows import Org, Person, device_sign_in, refresh, register_factor


def run(
    t: Org,
    token: str | None,
    name: str,
    params: dict[str, Any],
    service: str = "directory",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST one command; the response as it came."""
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    sent.update(headers or {})
    return httpx.post(
        f"{t.server.base_url}/api/{service}/commands/{name}", json=params, headers=sent, timeout=60
    )


def admin_token(t: Org, service: str = "directory") -> str:
    tokens = device_sign_in(t, t.admin, resource=t.audience(service))
    return str(tokens["access_token"])


class Tokens:
    """One sign-in of a person, and an access token for each service from its refresh token
    (as a client does: one sign-in, every service)."""

    def __init__(self, t: Org, person: Person) -> None:
        self.t = t
        first = device_sign_in(t, person, resource=t.audience("directory"))
        self.refresh_token = str(first["refresh_token"])
        self.access = {"directory": str(first["access_token"])}

    def __call__(self, service: str) -> str:
        if service not in self.access:
            answer = refresh(self.t, self.refresh_token, resource=self.t.audience(service))
            answer.raise_for_status()
            body = answer.json()
            self.refresh_token = body["refresh_token"]
            self.access[service] = body["access_token"]
        return self.access[service]

    def run(self, service: str, name: str, params: dict[str, Any]) -> httpx.Response:
        return run(self.t, self(service), name, params, service=service)


def result(response: httpx.Response) -> Any:
    """The ``result`` of a command that must have succeeded."""
    assert response.status_code == 200, response.text
    return response.json()["result"]


def new_user(admin: Tokens, name: str, department: str = "") -> dict[str, Any]:
    """A directory user ``name@{tenant}``, made by ``admin`` through New-User."""
    params = {"user_principal_name": f"{name}@{admin.t.name}", "department": department}
    user: dict[str, Any] = result(admin.run("directory", "New-User", params))
    return user


def scoped_role_holder(admin: Tokens, group: str, role: str, department: str) -> Tokens:
    """A role group ``group`` giving ``role`` over ``department``, made by ``admin`` with the
    tenant's password-only user as its member; that user signed in, with two factors as a
    role holder must (A8)."""
    t = admin.t
    scope = {"name": group, "roles": [role], "scope_department": department}
    result(admin.run("directory", "New-RoleGroup", scope))
    member = {"identity": group, "member": t.password_only.username}
    result(admin.run("directory", "Add-RoleGroupMember", member))
    return Tokens(t, register_factor(t, t.password_only))


def every_page(
    tokens: Tokens, service: str, command: str, params: dict[str, Any], page_size: int = 100
) -> list[Any]:
    """A listing command page by page, following the cursors; every item."""
    seen: list[Any] = []
    cursor = None
    while True:
        sent = {**params, "page_size": page_size, **({"cursor": cursor} if cursor else {})}
        response = tokens.run(service, command, sent)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= page_size
        seen += page["items"]
        cursor = page["next"]
        if cursor is None:
            return seen
