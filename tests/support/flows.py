"""Sign-in flows driven the way a person and a client would, against a real server."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import httpx

from bastion.authority import factor_store
from bastion.authority.factors import totp
from bastion.directory import users
from bastion.directory.tenants import Tenant, TenantPolicy
from bastion.server.bootstrap import new_tenant, new_user
from tests.support.browser import Browser
from tests.support.server import ServerProcess


@dataclass
class Person:
    username: str
    password: str
    totp_secret: bytes | None = None

    def code(self, server: ServerProcess, *, offset_steps: int = 0) -> str:
        assert self.totp_secret is not None
        return totp.code_at(self.totp_secret, server.now() + offset_steps * totp.PERIOD)


@dataclass
class Org:
    server: ServerProcess
    tenant: Tenant
    admin: Person
    enrolling: Person
    password_only: Person
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.tenant.name

    @property
    def issuer(self) -> str:
        return f"{self.server.base_url}/t/{self.tenant.name}"

    def audience(self, service: str) -> str:
        return f"{self.server.base_url}/api/{service}"

    def discovery(self) -> dict[str, Any]:
        doc: dict[str, Any] = httpx.get(f"{self.issuer}/.well-known/openid-configuration").json()
        return doc


def make_tenant(server: ServerProcess, **policy: Any) -> Org:
    """A fresh tenant: an MFA-enforced admin with TOTP, an MFA-enabled user, a password user."""
    auth = server.authority
    # four random letters first: a name with fewer than three letters has no context word,
    # which the password rules' tests count on (one name in sixteen of "t-" + hex had none)
    name = "t-" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(4))
    name += secrets.token_hex(3)
    pw = {k: "pw-" + secrets.token_urlsafe(12) for k in ("admin", "pat", "sam")}
    secret = totp.generate_secret()
    with auth.store.begin() as conn:
        tenant = new_tenant(
            auth, conn, name=name, display_name=f"Test {name}", policy=TenantPolicy(**policy)
        )
        admin = new_user(
            auth,
            conn,
            tenant,
            upn=f"admin@{name}",
            display_name="Admin",
            password=pw["admin"],
            mfa_state="enforced",
            roles=["Global Administrator"],
        )
        factor_store.add_totp(
            conn,
            auth.keyring,
            tenant_id=tenant.id,
            user_id=admin.id,
            secret=secret,
            accepted_step=None,
            now=server.now(),
        )
        new_user(
            auth,
            conn,
            tenant,
            upn=f"pat@{name}",
            display_name="Pat",
            password=pw["pat"],
            mfa_state="enabled",
        )
        new_user(
            auth,
            conn,
            tenant,
            upn=f"sam@{name}",
            display_name="Sam",
            password=pw["sam"],
            mfa_state="disabled",
        )
    return Org(
        server=server,
        tenant=tenant,
        admin=Person(f"admin@{name}", pw["admin"], secret),
        enrolling=Person(f"pat@{name}", pw["pat"]),
        password_only=Person(f"sam@{name}", pw["sam"]),
    )


def register_factor(t: Org, person: Person) -> Person:
    """Register an authenticator for ``person`` (in place), leaving their MFA state as it is.

    A user who holds a role signs in with two factors whatever their MFA state says (A8):
    tests that give the MFA-disabled user a role give them a factor first."""
    auth = t.server.authority
    secret = totp.generate_secret()
    with auth.store.begin() as conn:
        user = users.require_user(conn, t.tenant.id, person.username)
        factor_store.add_totp(
            conn,
            auth.keyring,
            tenant_id=t.tenant.id,
            user_id=user.id,
            secret=secret,
            accepted_step=None,
            now=t.server.now(),
        )
    person.totp_secret = secret
    return person


def give_recovery_codes(t: Org, person: Person) -> list[str]:
    """Store ten fresh recovery codes for ``person``; returns them in the clear."""
    auth = t.server.authority
    prepared = factor_store.prepare_recovery_codes(auth.hasher)  # slow: outside the transaction
    with auth.store.begin() as conn:
        user = users.require_user(conn, t.tenant.id, person.username)
        factor_store.store_recovery_codes(
            conn, prepared, tenant_id=t.tenant.id, user_id=user.id, now=t.server.now()
        )
    return prepared.codes


def sign_in_pages(
    browser: Browser, t: Org, user: Person, *, response: httpx.Response
) -> httpx.Response:
    """From the login page to the end of the sign-in, whatever the user's MFA asks."""
    assert "/login" in str(response.url), response.text[:300]
    response = browser.submit(
        f"/t/{t.name}/login", {"username": user.username, "password": user.password}
    )
    if "/login/mfa" in str(response.url):
        response = browser.submit(f"/t/{t.name}/login/mfa", {"code": user.code(t.server)})
    elif "/login/enroll" in str(response.url):
        raise AssertionError("enrollment needed; use enroll() for this user")
    return response


def device_code_request(
    t: Org,
    *,
    scope: str = "openid profile offline_access",
    resource: str | None = None,
    client_id: str = "bastion-cli",
) -> dict[str, Any]:
    data = {"client_id": client_id, "scope": scope}
    if resource:
        data["resource"] = resource
    response = httpx.post(f"{t.issuer}/oauth2/devicecode", data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def approve_device(browser: Browser, t: Org, user: Person, user_code: str) -> httpx.Response:
    response = browser.get(f"/t/{t.name}/device?user_code={user_code}")
    response = browser.submit(f"/t/{t.name}/device", {"user_code": user_code})
    if "/login" in str(response.url):
        response = sign_in_pages(browser, t, user, response=response)
    assert "/device/confirm" in str(response.url), response.text[:500]
    assert user_code in response.text
    return browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})


def poll_token(t: Org, device_code: str, client_id: str = "bastion-cli") -> httpx.Response:
    return httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code,
            "client_id": client_id,
        },
    )


def device_sign_in(
    t: Org,
    user: Person,
    *,
    resource: str | None = None,
    scope: str = "openid profile offline_access",
) -> dict[str, Any]:
    """The whole device grant: request, approve in the browser, poll; returns the tokens."""
    start = device_code_request(t, scope=scope, resource=resource)
    browser = Browser(t.server.base_url)
    try:
        done = approve_device(browser, t, user, start["user_code"])
        assert done.status_code == 200, done.text[:500]
    finally:
        browser.close()
    response = poll_token(t, start["device_code"])
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def refresh(t: Org, refresh_token: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "bastion-cli",
            **extra,
        },
    )
