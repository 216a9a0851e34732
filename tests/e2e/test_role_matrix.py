"""Each built-in role is allowed exactly its commands and denied the rest (403, audited).

The expectations are written out here by hand, from the issue's description of each role,
not derived from the role definitions in the code: a role that grants one command too many
or too few fails this test. A new command must be added to ``COMMANDS`` (the catalogs are
checked against it) and so to every role's expectation.
"""

from __future__ import annotations

import secrets

import httpx
import pytest
from sqlalchemy import func, select

from bastion.server.bootstrap import new_user
from bastion.store.schema import audit_events
from tests.support.flows import Org, Person, register_factor
from tests.support.plane import Tokens

COMMANDS: dict[str, set[str]] = {
    "directory": {
        "Get-User", "New-User", "Set-User", "Remove-User", "Disable-User", "Enable-User",
        "Revoke-UserSession",
        "Get-UserMfa", "Set-UserMfa", "Get-Group", "New-Group", "Remove-Group",
        "Add-GroupMember", "Remove-GroupMember", "Get-ManagementRole", "Get-RoleGroup",
        "New-RoleGroup", "Remove-RoleGroup", "Add-RoleGroupMember", "Remove-RoleGroupMember",
        "Search-AuditLog", "Export-AuditLog", "Export-UserRuleReport",
        "Get-Application", "New-Application", "Set-Application", "Remove-Application",
        "Add-ApplicationCertificate", "Remove-ApplicationCertificate",
        "Add-ApplicationFederatedCredential", "Remove-ApplicationFederatedCredential",
    },
    "mail": {
        "Get-Mailbox", "New-Mailbox", "Set-Mailbox", "Remove-Mailbox",
        "Get-MailboxStatistics", "Get-MailboxPermission", "Add-MailboxPermission",
        "Remove-MailboxPermission",
    },
    "sites": {
        "Get-Site", "New-Site", "Set-Site", "Remove-Site", "Get-SiteMember", "Add-SiteMember",
        "Remove-SiteMember",
    },
    "chat": {
        "Get-MeetingPolicy", "New-MeetingPolicy", "Set-MeetingPolicy", "Get-MessagingPolicy",
        "New-MessagingPolicy", "Set-MessagingPolicy", "Grant-ChatPolicy", "Get-ChatUser",
    },
}  # fmt: skip
ALL = {(service, name) for service, names in COMMANDS.items() for name in names}
DIRECTORY_READS = {
    ("directory", n)
    for n in (
        "Get-User",
        "Get-UserMfa",
        "Get-Group",
        "Get-ManagementRole",
        "Get-RoleGroup",
        "Get-Application",
    )
}


def _service(name: str) -> set[tuple[str, str]]:
    return {(name, command) for command in COMMANDS[name]}


def _readers() -> set[tuple[str, str]]:
    return {(s, n) for s, n in ALL if n.startswith("Get-")}


EXPECTED: dict[str, set[tuple[str, str]]] = {
    "Global Administrator": ALL,
    "Mail Recipients Administrator": _service("mail") | DIRECTORY_READS,
    # reads users, resets passwords and MFA, deletes nothing
    "Helpdesk": DIRECTORY_READS
    | {("directory", n) for n in ("Set-User", "Set-UserMfa", "Enable-User", "Disable-User")},
    "Sites Administrator": _service("sites") | DIRECTORY_READS,
    "Chat Administrator": _service("chat") | DIRECTORY_READS,
    "Audit Reader": {("directory", "Search-AuditLog"), ("directory", "Export-AuditLog")},
    "Read-Only Reporting": _readers(),
}


def _holder(t: Org, role: str) -> Person:
    """A user holding only ``role``, with an authenticator: sensitive commands pass step-up."""
    auth = t.server.authority
    upn = f"{role.lower().replace(' ', '-')}@{t.name}"
    password = "pw-" + secrets.token_urlsafe(12)
    with auth.store.begin() as conn:
        new_user(
            auth,
            conn,
            t.tenant,
            upn=upn,
            display_name=role,
            password=password,
            mfa_state="enforced",
            roles=[role],
        )
    return register_factor(t, Person(upn, password))


def test_catalogs_hold_exactly_the_commands_of_the_matrix(t: Org) -> None:
    for service, names in COMMANDS.items():
        body = httpx.get(f"{t.server.base_url}/api/{service}/commands").json()
        assert {c["name"] for c in body["commands"]} == names, service


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_built_in_role_is_allowed_exactly_its_commands(t: Org, role: str) -> None:
    person = _holder(t, role)
    tokens = Tokens(t, person)
    wrongly_denied, wrongly_allowed = [], []
    for service, name in sorted(ALL):
        # An empty parameter object: an allowed write fails validation and changes nothing.
        answer = tokens.run(service, name, {})
        denied = answer.status_code == 403
        if denied:
            assert answer.json()["command"] == name
        if (service, name) in EXPECTED[role] and denied:
            wrongly_denied.append(name)
        if (service, name) not in EXPECTED[role] and not denied:
            wrongly_allowed.append(f"{name} ({answer.status_code})")
    assert not wrongly_denied, f"{role} was denied {wrongly_denied}"
    assert not wrongly_allowed, f"{role} was allowed {wrongly_allowed}"
    with t.server.authority.store.begin() as conn:
        audited = conn.execute(
            select(func.count())
            .select_from(audit_events)
            .where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.actor_name == person.username,
                audit_events.c.outcome == "denied",
            )
        ).scalar_one()
    assert audited == len(ALL - EXPECTED[role])
    if role == "Helpdesk":
        # Set-User only to reset a password: any other parameter is denied
        renamed = tokens.run(
            "directory", "Set-User", {"identity": t.admin.username, "display_name": "X"}
        )
        assert renamed.status_code == 403
