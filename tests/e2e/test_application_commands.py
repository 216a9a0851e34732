"""Applications managed with the directory service's commands, and running commands with
their own access tokens, against real server processes.

An administrator registers an application, adds its certificate and puts it in a role group
through the commands over HTTP; MSAL's ConfidentialClientApplication (over HTTPS, as it
insists) gets it a token, and the mail service answers it within its role: a write it does
not hold is 403 and audited under the application. Removing a certificate ends the tokens
issued before; a disabled application's token and one used from outside its networks are
refused; a sensitive command is 403 to an application unless the tenant's policy names its
role group; only a holder of every role it holds may remove it."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import msal
import pytest
import requests

from bastion.server.bootstrap import new_user
from bastion.server.tls import LocalTls, ensure_local_tls
from tests.support.applications import ASSERTION_TYPE, KeyPair, assertion, make_certificate
from tests.support.flows import Org, Person, make_tenant, register_factor
from tests.support.plane import Tokens, result, run
from tests.support.server import ServerProcess, running_server, start_server

pytestmark = [pytest.mark.slow, pytest.mark.tenant(served_by="https_server")]

_RSA = make_certificate("RSA")
_EC = make_certificate("EC")
READ_ONLY = "Read-Only Reporting"
MAIL_ADMIN = "Mail Recipients Administrator"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_server(
    backend: str, tls: LocalTls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """HTTPS, for MSAL; ``plain`` serves the same data over HTTP for everything else."""
    data_dir = tmp_path_factory.mktemp(f"app-commands-{backend}")
    with running_server(backend, data_dir, tls=tls) as proc:
        yield proc


@pytest.fixture(scope="module")
def plain(https_server: ServerProcess) -> Iterator[ServerProcess]:
    proc = start_server(https_server.data_dir, database_url=https_server.database_url, name="plain")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def web(t: Org, plain: ServerProcess) -> Org:
    """The tenant as seen through the plain HTTP server."""
    return replace(t, server=plain)


@pytest.fixture
def admin(web: Org) -> Tokens:
    """The tenant's Global Administrator, signed in with two factors."""
    return Tokens(web, web.admin)


def register(admin: Tokens, name: str, *pairs: KeyPair, role_group: str | None = READ_ONLY) -> Any:
    """An application made by ``admin`` through the commands: its certificates added, and
    in ``role_group``."""
    app = result(admin.run("directory", "New-Application", {"display_name": name}))
    for pair in pairs:
        added = result(
            admin.run(
                "directory",
                "Add-ApplicationCertificate",
                {"identity": app["appId"], "certificate": pair.certificate_pem},
            )
        )
        assert (added["thumbprint"], added["thumbprintSha1"]) == (pair.sha256_hex, pair.sha1_hex)
        assert added["notAfter"].startswith(str(pair.certificate.not_valid_after_utc.year))
    if role_group is not None:
        member = {"identity": role_group, "member": app["appId"]}
        result(admin.run("directory", "Add-RoleGroupMember", member))
    return app


def app_token(web: Org, app_id: str, pair: KeyPair, service: str = "mail") -> str:
    """An access token for ``service``, by the client credentials grant with a certificate."""
    endpoint = f"{web.issuer}/oauth2/token"
    answer = httpx.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(pair, app_id, endpoint, web.server.now()),
            "scope": f"{web.audience(service)}/.default",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def invalid_token(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 401, answer.text
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    for word in words:
        assert word in answer.json()["detail"], answer.json()


def holder(web: Org, role: str) -> Tokens:
    """A user holding only ``role``, with an authenticator, signed in."""
    auth = web.server.authority
    upn = f"{role.lower().replace(' ', '-')}@{web.name}"
    password = "pw-" + secrets.token_urlsafe(12)
    with auth.store.begin() as conn:
        new_user(
            auth,
            conn,
            web.tenant,
            upn=upn,
            display_name=role,
            password=password,
            mfa_state="enforced",
            roles=[role],
        )
    return Tokens(web, register_factor(web, Person(upn, password)))


def audited_under(admin: Tokens, actor: str) -> list[dict[str, Any]]:
    answer = admin.run("directory", "Search-AuditLog", {"actor": actor, "record_type": "command"})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


class Trusting(requests.Session):
    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = ca_file


@pytest.mark.parametrize("form", ["public_certificate", "thumbprint"])
def test_an_application_registered_by_commands_reads_mail_with_an_msal_token(
    t: Org, web: Org, admin: Tokens, tls: LocalTls, form: str
) -> None:
    app = register(admin, "Mailbox report", _RSA)
    groups = result(admin.run("directory", "Get-RoleGroup", {"identity": READ_ONLY}))
    assert [(m["kind"], m["name"], m["id"]) for m in groups[0]["members"]] == [
        ("app", "Mailbox report", app["id"])
    ]
    listed = result(admin.run("directory", "Get-Application", {"identity": app["appId"]}))
    assert listed[0]["roles"] == [READ_ONLY]
    assert [c["thumbprint"] for c in listed[0]["certificates"]] == [_RSA.sha256_hex]
    result(admin.run("mail", "New-Mailbox", {"user": t.password_only.username}))

    credential = {"private_key": _RSA.private_pem}
    credential[form] = _RSA.certificate_pem if form == "public_certificate" else _RSA.sha1_hex
    with Trusting(str(tls.ca_file)) as session:
        client = msal.ConfidentialClientApplication(
            app["appId"], client_credential=credential, oidc_authority=t.issuer, http_client=session
        )
        got = client.acquire_token_for_client(scopes=[f"{t.audience('mail')}/.default"])
    assert "access_token" in got, got
    token = got["access_token"]
    trusted = ssl.create_default_context(cafile=str(tls.ca_file))

    def call(name: str, params: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{t.server.base_url}/api/mail/commands/{name}",
            json=params,
            headers={"Authorization": f"Bearer {token}"},
            verify=trusted,
            timeout=60,
        )

    mailboxes = call("Get-Mailbox", {})
    assert mailboxes.status_code == 200, mailboxes.text
    assert [m["type"] for m in mailboxes.json()["items"]] == ["user"]
    denied = call("Remove-Mailbox", {"identity": t.password_only.username})
    assert denied.status_code == 403, denied.text

    for actor in (app["appId"], "Mailbox report"):
        records = [r for r in audited_under(admin, actor) if r["outcome"] == "denied"]
        assert [(r["data"]["command"], r["actorId"], r["clientId"]) for r in records] == [
            ("Remove-Mailbox", app["id"], app["appId"])
        ]
        assert records[0]["actorName"] == "Mailbox report"
        assert records[0]["data"]["amr"] == []


def test_removing_a_certificate_ends_the_tokens_issued_before(web: Org, admin: Tokens) -> None:
    app = register(admin, "Rotating job", _RSA, _EC)
    first = app_token(web, app["appId"], _RSA)
    assert run(web, first, "Get-Mailbox", {}, service="mail").status_code == 200
    gone = result(
        admin.run(
            "directory",
            "Remove-ApplicationCertificate",
            {"identity": "Rotating job", "thumbprint": _RSA.sha1_hex.upper()},
        )
    )
    assert [c["thumbprint"] for c in gone["certificates"]] == [_EC.sha256_hex]
    invalid_token(run(web, first, "Get-Mailbox", {}, service="mail"), "no longer count")
    web.server.advance(2)
    second = app_token(web, app["appId"], _EC)
    assert run(web, second, "Get-Mailbox", {}, service="mail").status_code == 200
    missing = admin.run(
        "directory",
        "Remove-ApplicationCertificate",
        {"identity": "Rotating job", "thumbprint": _RSA.sha256_hex},
    )
    assert missing.status_code == 404, missing.text


def test_certificates_about_to_end_are_listed(web: Org, admin: Tokens) -> None:
    soon = make_certificate("EC", not_after=web.server.now() + 5 * 86400)
    register(admin, "Ends soon", soon, role_group=None)
    register(admin, "Ends later", _EC, role_group=None)
    for days, names in ((10, ["Ends soon"]), (400, ["Ends later", "Ends soon"]), (1, [])):
        listed = result(
            admin.run("directory", "Get-Application", {"certificates_expiring_within_days": days})
        )
        assert [a["displayName"] for a in listed] == names, days


def test_a_disabled_application_is_refused(web: Org, admin: Tokens) -> None:
    app = register(admin, "Paused job", _EC)
    token = app_token(web, app["appId"], _EC)
    changed = result(
        admin.run("directory", "Set-Application", {"identity": app["appId"], "enabled": False})
    )
    assert changed["enabled"] is False
    invalid_token(run(web, token, "Get-Mailbox", {}, service="mail"), "disabled")
    result(admin.run("directory", "Set-Application", {"identity": app["appId"], "enabled": True}))
    assert run(web, token, "Get-Mailbox", {}, service="mail").status_code == 200


def test_allowed_networks_refuse_commands_from_outside(web: Org, admin: Tokens) -> None:
    app = register(admin, "Office job", _EC)
    token = app_token(web, app["appId"], _EC)
    elsewhere = {"identity": app["appId"], "allowed_networks": ["10.0.0.0/8, 192.168.0.0/16"]}
    changed = result(admin.run("directory", "Set-Application", elsewhere))
    assert changed["allowedNetworks"] == ["10.0.0.0/8", "192.168.0.0/16"]
    invalid_token(run(web, token, "Get-Mailbox", {}, service="mail"), "allowed networks")
    here = {"identity": app["appId"], "allowed_networks": ["127.0.0.0/8", "::1"]}
    result(admin.run("directory", "Set-Application", here))
    assert run(web, token, "Get-Mailbox", {}, service="mail").status_code == 200
    bad = admin.run(
        "directory", "Set-Application", {"identity": app["appId"], "allowed_networks": ["nope"]}
    )
    assert bad.status_code == 400, bad.text
    cleared = {"identity": app["appId"], "clear_networks": True}
    assert result(admin.run("directory", "Set-Application", cleared))["allowedNetworks"] is None


def test_a_sensitive_command_is_403_to_an_application_unless_the_policy_allows_it(
    web: Org, admin: Tokens, plain: ServerProcess
) -> None:
    app = register(admin, "Cleanup job", _EC, role_group=MAIL_ADMIN)
    result(admin.run("mail", "New-Mailbox", {"user": web.password_only.username}))
    token = app_token(web, app["appId"], _EC)
    sent = {"identity": web.password_only.username}
    denied = run(web, token, "Remove-Mailbox", sent, service="mail")
    assert denied.status_code == 403, denied.text
    assert "sensitive" in denied.json()["detail"]
    assert run(web, token, "Get-Mailbox", sent, service="mail").status_code == 200

    allowing = replace(make_tenant(plain, app_sensitive_role_groups=(MAIL_ADMIN,)), server=plain)
    other_admin = Tokens(allowing, allowing.admin)
    other = register(other_admin, "Cleanup job", _EC, role_group=MAIL_ADMIN)
    result(other_admin.run("mail", "New-Mailbox", {"user": allowing.password_only.username}))
    other_token = app_token(allowing, other["appId"], _EC)
    removed = run(
        allowing,
        other_token,
        "Remove-Mailbox",
        {"identity": allowing.password_only.username},
        service="mail",
    )
    assert removed.status_code == 200, removed.text


def test_only_a_holder_of_its_roles_removes_an_application(web: Org, admin: Tokens) -> None:
    app = register(admin, "Powerful job", _EC, role_group="Global Administrator")
    token = app_token(web, app["appId"], _EC, service="directory")
    helpdesk = holder(web, "Helpdesk")
    for name, params in (
        ("Remove-Application", {}),
        ("Add-ApplicationCertificate", {"certificate": _RSA.certificate_pem}),
        ("Set-Application", {"allowed_networks": ["10.0.0.0/8"]}),
    ):
        refused = helpdesk.run("directory", name, {"identity": app["appId"], **params})
        assert refused.status_code == 403, refused.text
    # the application itself, a Global Administrator, needs no second factor
    listed = run(web, token, "Get-Application", {"identity": app["appId"]})
    assert result(listed)[0]["roles"] == ["Global Administrator"]

    removed = result(admin.run("directory", "Remove-Application", {"identity": "Powerful job"}))
    assert removed["appId"] == app["appId"]
    groups = result(admin.run("directory", "Get-RoleGroup", {"identity": "Global Administrator"}))
    assert app["id"] not in [m["id"] for m in groups[0]["members"]]
    invalid_token(run(web, token, "Get-Application", {}), "no longer exists")
    gone = admin.run("directory", "Get-Application", {"identity": app["appId"]})
    assert gone.status_code == 404


def test_federated_credentials_are_added_listed_and_removed(web: Org, admin: Tokens) -> None:
    app = register(admin, "CI job", role_group=None)
    credential = {
        "identity": app["appId"],
        "issuer": "https://token.actions.example.com",
        "subject": "repo:contoso/reports:ref:refs/heads/main",
        "audience": "api://bastion",
    }
    added = result(admin.run("directory", "Add-ApplicationFederatedCredential", credential))
    assert [(c["issuer"], c["subject"]) for c in added["federatedCredentials"]] == [
        (credential["issuer"], credential["subject"])
    ]
    again = admin.run("directory", "Add-ApplicationFederatedCredential", credential)
    assert again.status_code == 409, again.text
    which = {k: credential[k] for k in ("identity", "issuer", "subject")}
    removed = result(admin.run("directory", "Remove-ApplicationFederatedCredential", which))
    assert removed["federatedCredentials"] == []
    missing = admin.run("directory", "Remove-ApplicationFederatedCredential", which)
    assert missing.status_code == 404, missing.text
