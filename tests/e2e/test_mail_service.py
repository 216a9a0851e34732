"""The mail service over HTTP: mailboxes of users, shared and room mailboxes, their
addresses, quotas, forwarding, litigation hold, usage and permissions, and scoped admins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bastion.store.schema import audit_events, mail_addresses, mailbox_permissions, mailboxes
from tests.support.flows import Org
from tests.support.plane import Tokens, every_page, new_user, result, scoped_role_holder
from tests.support.server import ServerProcess

COMMANDS = {
    "Get-Mailbox",
    "New-Mailbox",
    "Set-Mailbox",
    "Remove-Mailbox",
    "Get-MailboxStatistics",
    "Get-MailboxPermission",
    "Add-MailboxPermission",
    "Remove-MailboxPermission",
}
MIB = 1024 * 1024


def listed_mailboxes(
    tokens: Tokens, params: dict[str, Any], page_size: int
) -> list[dict[str, Any]]:
    """Get-Mailbox page by page, following the cursors."""
    return every_page(tokens, "mail", "Get-Mailbox", params, page_size)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def new_mailbox(tokens: Tokens, **params: Any) -> dict[str, Any]:
    mailbox: dict[str, Any] = result(tokens.run("mail", "New-Mailbox", params))
    return mailbox


def shared(tokens: Tokens, address: str, **more: Any) -> dict[str, Any]:
    return new_mailbox(
        tokens, type="shared", display_name=address.split("@")[0], primary_address=address, **more
    )


def one(tokens: Tokens, identity: str) -> dict[str, Any]:
    found = listed_mailboxes(tokens, {"identity": identity}, page_size=10)
    assert len(found) == 1, found
    return found[0]


def stored_addresses(t: Org, mailbox_id: str) -> dict[str, bool]:
    with t.server.authority.store.begin() as conn:
        rows = conn.execute(
            select(mail_addresses.c.address, mail_addresses.c.is_primary).where(
                mail_addresses.c.tenant_id == t.tenant.id,
                mail_addresses.c.mailbox_id == mailbox_id,
            )
        ).all()
    return {row.address: row.is_primary for row in rows}


def assert_addresses_stored(t: Org, mailbox: dict[str, Any]) -> None:
    """The mailbox's addresses as listed are exactly its rows in mail_addresses."""
    expected = {mailbox["primaryAddress"]: True} | dict.fromkeys(mailbox["aliases"], False)
    assert stored_addresses(t, mailbox["id"]) == expected
    assert mailbox["aliases"] == sorted(mailbox["aliases"])


def test_catalog_lists_every_command_with_schemas(server: ServerProcess) -> None:
    body = httpx.get(f"{server.base_url}/api/mail/commands").json()
    commands = {c["name"]: c for c in body["commands"]}
    assert commands.keys() == COMMANDS
    for name, entry in commands.items():
        assert entry["help"] and entry["parameters"]["additionalProperties"] is False
        assert entry["sensitive"] is name.startswith("Remove-"), name
        assert entry["lists"] is (name == "Get-Mailbox"), name
        assert entry["output"], name
        if name != "Get-Mailbox" and name != "New-Mailbox":
            assert "identity" in entry["parameters"]["required"], name
    new = commands["New-Mailbox"]["parameters"]["properties"]
    assert new["type"]["enum"] == ["user", "shared", "room"] and new["type"]["default"] == "user"
    assert set(new) == {"type", "user", "display_name", "primary_address", "aliases", "quota_mb"}
    assert new["quota_mb"]["anyOf"][0]["maximum"] == 102400
    listing = commands["Get-Mailbox"]["parameters"]["properties"]
    assert set(listing) == {"identity", "type", "inactive", "litigation_hold"}
    assert set(commands["Set-Mailbox"]["parameters"]["properties"]) == {
        "identity",
        "display_name",
        "primary_address",
        "add_aliases",
        "remove_aliases",
        "quota_mb",
        "forwarding_address",
        "deliver_and_forward",
        "litigation_hold",
    }
    assert set(commands["Add-MailboxPermission"]["parameters"]["required"]) == {
        "identity",
        "user",
        "access_rights",
    }
    assert set(commands["Get-Mailbox"]["output"]["properties"]) == {
        "id",
        "type",
        "displayName",
        "primaryAddress",
        "aliases",
        "userId",
        "userPrincipalName",
        "quotaMb",
        "forwardingAddress",
        "deliverAndForward",
        "litigationHold",
        "litigationHoldSince",
        "inactive",
        "createdAt",
    }
    statistics = commands["Get-MailboxStatistics"]["output"]["properties"]
    assert {"itemCount", "totalSizeBytes", "quotaMb", "percentUsed", "lastLogonTime"} <= set(
        statistics
    )
    permissions = commands["Get-MailboxPermission"]["output"]
    assert permissions["type"] == "array"
    assert permissions["items"]["$ref"].endswith("/MailboxPermission")


def test_mailboxes_are_created_and_listed_in_pages_with_filters(t: Org, admin: Tokens) -> None:
    pat, sam, boss = t.enrolling.username, t.password_only.username, t.admin.username
    mine = new_mailbox(admin, user=pat)
    assert mine["primaryAddress"] == pat and mine["userPrincipalName"] == pat
    assert (mine["type"], mine["displayName"], mine["quotaMb"], mine["aliases"]) == (
        "user",
        "Pat",
        51200,
        [],
    )
    assert (mine["forwardingAddress"], mine["deliverAndForward"]) == (None, False)
    assert (mine["litigationHold"], mine["litigationHoldSince"], mine["inactive"]) == (
        False,
        None,
        False,
    )
    created = datetime.fromisoformat(mine["createdAt"])
    assert abs(created.timestamp() - t.server.now()) < 60
    again = admin.run("mail", "New-Mailbox", {"user": pat})
    assert problem(again, 409)["parameter"] == "user"

    sams = new_mailbox(
        admin,
        user=sam,
        display_name="Sam S.",
        primary_address=f"Sam.S@{t.name}.example",
        aliases=[f"s@{t.name}.example", f"SAM@{t.name}.example"],
        quota_mb=2048,
    )
    assert sams["primaryAddress"] == f"sam.s@{t.name}.example"
    assert sams["aliases"] == [f"s@{t.name}.example", f"sam@{t.name}.example"]
    assert (sams["displayName"], sams["quotaMb"]) == ("Sam S.", 2048)
    help_desk = shared(admin, f"Help@{t.name}.example", aliases=[f"support@{t.name}.example"] * 2)
    assert help_desk["primaryAddress"] == f"help@{t.name}.example"
    assert help_desk["aliases"] == [f"support@{t.name}.example"]
    assert (help_desk["type"], help_desk["userId"], help_desk["userPrincipalName"]) == (
        "shared",
        None,
        None,
    )
    assert help_desk["quotaMb"] == 51200
    room = new_mailbox(
        admin, type="room", display_name="Room 1", primary_address=f"room1@{t.name}.example"
    )
    assert (room["type"], room["quotaMb"], room["userId"]) == ("room", 10240, None)
    boss_id = admin.run("directory", "Get-User", {"identity": boss}).json()["items"][0]["id"]
    bosses = new_mailbox(admin, user=boss_id)
    for mailbox in (mine, sams, help_desk, room, bosses):
        assert_addresses_stored(t, mailbox)

    everything = [bosses, help_desk, mine, room, sams]
    assert sorted(m["primaryAddress"] for m in everything) == [
        m["primaryAddress"] for m in everything
    ]
    assert listed_mailboxes(admin, {}, page_size=2) == everything
    first = admin.run("mail", "Get-Mailbox", {"page_size": 2}).json()
    assert len(first["items"]) == 2 and first["next"]
    assert listed_mailboxes(admin, {"type": "room"}, page_size=2) == [room]
    assert listed_mailboxes(admin, {"type": "user"}, page_size=2) == [
        bosses,
        mine,
        sams,
    ]
    assert listed_mailboxes(admin, {"inactive": False}, page_size=10) == everything
    assert listed_mailboxes(admin, {"inactive": True}, page_size=10) == []
    assert listed_mailboxes(admin, {"litigation_hold": False}, page_size=10) == everything
    assert listed_mailboxes(admin, {"litigation_hold": True}, page_size=10) == []

    # -Identity: the mailbox's id, any of its addresses, its owner's id or principal name
    sam_id = sams["userId"]
    for identity in (
        sams["id"],
        f"sam.s@{t.name}.example",
        f"  SAM@{t.name.upper()}.EXAMPLE ",
        f"s@{t.name}.example",
        sam,
        sam_id,
    ):
        assert listed_mailboxes(admin, {"identity": identity}, page_size=10) == [sams], identity
    assert one(admin, f"SUPPORT@{t.name}.example") == help_desk
    for nothing in (f"nobody@{t.name}", "bad\x00name", "x" * 320):
        missing = problem(admin.run("mail", "Get-Mailbox", {"identity": nothing}), 404)
        assert missing["parameter"] == "identity"
    filtered = admin.run("mail", "Get-Mailbox", {"identity": sam, "type": "shared"})
    assert "matches type" in problem(filtered, 404)["detail"]
    bad_type = admin.run("mail", "Get-Mailbox", {"type": "group"})
    assert problem(bad_type, 400)["parameter"] == "type"


BAD_ADDRESSES = [
    "no-at-sign",
    "two@at@signs",
    "@no-local",
    "no-domain@",
    "a space@x",
    "tab\t@x",
    "line\nbreak@x",
    "ünï@x",
    "a..b@x",
    ".a@x",
    "a@-x",
    "a@x..y",
    "a@x_y",
    "<a>@x",
    "a" * 310 + "@" + "x" * 10,
]


def test_addresses_must_be_valid_and_free(t: Org, admin: Tokens) -> None:
    domain = f"{t.name}.example"
    for bad in BAD_ADDRESSES:
        for params, named in [
            ({"primary_address": bad}, "primary_address"),
            ({"primary_address": f"ok@{domain}", "aliases": [f"ok2@{domain}", bad]}, "aliases"),
        ]:
            response = admin.run(
                "mail", "New-Mailbox", {"type": "shared", "display_name": "X", **params}
            )
            body = problem(response, 400)
            assert body["parameter"] == named, (bad, body)
            assert named in body["detail"]
    for params, named in [
        ({"type": "shared", "primary_address": f"a@{domain}"}, "display_name"),
        ({"type": "room", "display_name": "R"}, "primary_address"),
        (
            {"type": "shared", "display_name": "S", "primary_address": f"a@{domain}", "user": "x"},
            "user",
        ),
        ({}, "user"),
        (
            {"type": "shared", "display_name": "\x00", "primary_address": f"a@{domain}"},
            "display_name",
        ),
        ({"user": t.enrolling.username, "quota_mb": 0}, "quota_mb"),
        ({"user": t.enrolling.username, "quota_mb": 102401}, "quota_mb"),
        ({"user": t.enrolling.username, "aliases": "a@b"}, "aliases"),
        ({"type": "group", "display_name": "G", "primary_address": f"a@{domain}"}, "type"),
        ({"user": t.enrolling.username, "colour": "blue"}, "colour"),
    ]:
        body = problem(admin.run("mail", "New-Mailbox", params), 400)
        assert body["parameter"] == named, (params, body)
    unknown = admin.run("mail", "New-Mailbox", {"user": f"nobody@{t.name}"})
    assert problem(unknown, 404)["parameter"] == "user"
    assert listed_mailboxes(admin, {}, page_size=10) == []  # nothing was created

    # an address belongs to one mailbox, as primary or alias, whatever its case
    first = shared(admin, f"team@{domain}", aliases=[f"crew@{domain}"])
    for params, named, taken in [
        ({"primary_address": f"CREW@{domain}"}, "primary_address", f"crew@{domain}"),
        ({"primary_address": f"other@{domain}", "aliases": [f"team@{domain}"]}, "aliases", None),
    ]:
        sent = {"type": "shared", "display_name": "Other", **params}
        body = problem(admin.run("mail", "New-Mailbox", sent), 409)
        address = taken or f"team@{domain}"
        assert body["parameter"] == named and body["address"] == address
        assert address in body["detail"]
    other = shared(admin, f"other@{domain}")
    for params, named in [
        ({"add_aliases": [f"new@{domain}", f"Team@{domain}"]}, "add_aliases"),
        ({"primary_address": f"crew@{domain}"}, "primary_address"),
    ]:
        refused = admin.run("mail", "Set-Mailbox", {"identity": other["id"], **params})
        assert problem(refused, 409)["parameter"] == named
    assert one(admin, other["id"]) == other  # nothing of the refused changes stayed
    assert stored_addresses(t, other["id"]) == {f"other@{domain}": True}
    assert_addresses_stored(t, first)

    # a user mailbox takes the user principal name as its address: it must be free too
    shared(admin, t.enrolling.username)
    clash = admin.run("mail", "New-Mailbox", {"user": t.enrolling.username})
    body = problem(clash, 409)
    assert body["parameter"] == "primary_address" and body["address"] == t.enrolling.username
    own = new_mailbox(admin, user=t.enrolling.username, primary_address=f"pat@{domain}")
    assert own["primaryAddress"] == f"pat@{domain}"
    # the user's principal name then names two mailboxes: the user's and the shared one
    assert len(listed_mailboxes(admin, {"identity": t.enrolling.username}, page_size=10)) == 2
    ambiguous = admin.run("mail", "Set-Mailbox", {"identity": t.enrolling.username})
    assert problem(ambiguous, 400)["parameter"] == "identity"


def test_set_mailbox_changes_addresses_forwarding_and_quota(t: Org, admin: Tokens) -> None:
    domain = f"{t.name}.example"
    box = shared(admin, f"x@{domain}", aliases=[f"y@{domain}"])
    renamed = result(
        admin.run(
            "mail",
            "Set-Mailbox",
            {
                "identity": f"x@{domain}",
                "display_name": "  Sales desk ",
                "primary_address": f"Z@{domain}",
            },
        )
    )
    # the previous primary address stays as an alias
    assert renamed == {
        **box,
        "displayName": "Sales desk",
        "primaryAddress": f"z@{domain}",
        "aliases": [f"x@{domain}", f"y@{domain}"],
    }
    assert_addresses_stored(t, renamed)
    swapped = result(
        admin.run(
            "mail", "Set-Mailbox", {"identity": f"x@{domain}", "primary_address": f"y@{domain}"}
        )
    )
    assert (swapped["primaryAddress"], swapped["aliases"]) == (
        f"y@{domain}",
        [f"x@{domain}", f"z@{domain}"],
    )
    assert_addresses_stored(t, swapped)
    changed = result(
        admin.run(
            "mail",
            "Set-Mailbox",
            {
                "identity": box["id"],
                "add_aliases": [f"W@{domain}", f"z@{domain}"],
                "remove_aliases": [f"x@{domain}"],
            },
        )
    )
    assert (changed["primaryAddress"], changed["aliases"]) == (
        f"y@{domain}",
        [f"w@{domain}", f"z@{domain}"],
    )
    assert_addresses_stored(t, changed)
    assert one(admin, f"w@{domain}") == changed
    problem(admin.run("mail", "Get-Mailbox", {"identity": f"x@{domain}"}), 404)
    shared(admin, f"x@{domain}")  # a removed address is free again

    for params, status, named in [
        ({"remove_aliases": [f"y@{domain}"]}, 400, "remove_aliases"),
        (
            {"primary_address": f"w@{domain}", "remove_aliases": [f"w@{domain}"]},
            400,
            "remove_aliases",
        ),
        (
            {"add_aliases": [f"v@{domain}"], "remove_aliases": [f"V@{domain}"]},
            400,
            "remove_aliases",
        ),
        ({"remove_aliases": [f"never@{domain}"]}, 404, "remove_aliases"),
        ({"add_aliases": ["not an address"]}, 400, "add_aliases"),
        ({"primary_address": "nope"}, 400, "primary_address"),
        ({"display_name": "\x07"}, 400, "display_name"),
        ({"quota_mb": 0}, 400, "quota_mb"),
        ({"forwarding_address": f"Z@{domain}"}, 400, "forwarding_address"),
        ({"forwarding_address": "no-at-sign"}, 400, "forwarding_address"),
        ({"deliver_and_forward": "maybe"}, 400, "deliver_and_forward"),
        ({"owner": "x"}, 400, "owner"),
    ]:
        body = problem(admin.run("mail", "Set-Mailbox", {"identity": box["id"], **params}), status)
        assert body["parameter"] == named, (params, body)
    assert one(admin, box["id"]) == changed
    missing = admin.run("mail", "Set-Mailbox", {"identity": f"nobody@{domain}"})
    assert problem(missing, 404)["parameter"] == "identity"

    # forwarding: to any address but its own; "" stops it
    forwarding = result(
        admin.run(
            "mail",
            "Set-Mailbox",
            {
                "identity": box["id"],
                "forwarding_address": " Out@Partner.example ",
                "deliver_and_forward": True,
            },
        )
    )
    assert (forwarding["forwardingAddress"], forwarding["deliverAndForward"]) == (
        "out@partner.example",
        True,
    )
    loop = admin.run(
        "mail", "Set-Mailbox", {"identity": box["id"], "add_aliases": ["out@partner.example"]}
    )
    assert problem(loop, 409)["parameter"] == "add_aliases"
    stopped = result(
        admin.run("mail", "Set-Mailbox", {"identity": box["id"], "forwarding_address": ""})
    )
    assert stopped["forwardingAddress"] is None and stopped["deliverAndForward"] is True

    # the quota cannot go below what the mailbox holds
    with t.server.authority.store.begin() as conn:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == box["id"])
            .values(total_size_bytes=5120 * MIB + 1, item_count=4321, last_logon_at=1_800_000_000.5)
        )
    below = admin.run(
        "mail", "Set-Mailbox", {"identity": box["id"], "quota_mb": 5120, "display_name": "No"}
    )
    body = problem(below, 409)
    assert body["parameter"] == "quota_mb" and "at least 5121 MB" in body["detail"]
    exact = result(admin.run("mail", "Set-Mailbox", {"identity": box["id"], "quota_mb": 5121}))
    assert (exact["quotaMb"], exact["displayName"]) == (5121, "Sales desk")
    statistics = result(admin.run("mail", "Get-MailboxStatistics", {"identity": f"w@{domain}"}))
    assert statistics["id"] == box["id"]
    assert (statistics["itemCount"], statistics["totalSizeBytes"], statistics["quotaMb"]) == (
        4321,
        5120 * MIB + 1,
        5121,
    )
    assert statistics["percentUsed"] == pytest.approx(100 * 5120 / 5121, abs=0.01)
    assert datetime.fromisoformat(statistics["lastLogonTime"]).timestamp() == 1_800_000_000.5
    fresh = result(admin.run("mail", "Get-MailboxStatistics", {"identity": f"x@{domain}"}))
    assert (fresh["itemCount"], fresh["totalSizeBytes"], fresh["percentUsed"]) == (0, 0, 0)
    assert fresh["lastLogonTime"] is None and fresh["quotaMb"] == 51200
    nothing = admin.run("mail", "Get-MailboxStatistics", {"identity": f"nobody@{domain}"})
    assert problem(nothing, 404)["parameter"] == "identity"


def test_litigation_hold_blocks_removal_and_keeps_an_inactive_mailbox(
    t: Org, admin: Tokens
) -> None:
    leaver = new_user(admin, "leaver")
    box = new_mailbox(admin, user=leaver["id"], aliases=[f"l@{t.name}"])
    held = result(
        admin.run("mail", "Set-Mailbox", {"identity": box["id"], "litigation_hold": True})
    )
    assert held["litigationHold"] is True
    since = held["litigationHoldSince"]
    assert abs(datetime.fromisoformat(since).timestamp() - t.server.now()) < 60
    still = result(
        admin.run("mail", "Set-Mailbox", {"identity": box["id"], "litigation_hold": True})
    )
    assert still["litigationHoldSince"] == since
    assert listed_mailboxes(admin, {"litigation_hold": True}, page_size=5) == [still]

    refused = admin.run("mail", "Remove-Mailbox", {"identity": box["id"]})
    body = problem(refused, 409)
    assert "litigation hold" in body["detail"] and "Lift the hold" in body["detail"]

    # the user leaves: the held mailbox is kept, inactive, with no owner
    gone = result(admin.run("directory", "Remove-User", {"identity": leaver["id"]}))
    assert gone["mailboxesKeptInactive"] == 1
    inactive = one(admin, f"l@{t.name}")
    assert inactive == {**still, "userId": None, "userPrincipalName": None, "inactive": True}
    assert listed_mailboxes(admin, {"inactive": True}, page_size=5) == [inactive]
    assert listed_mailboxes(admin, {"inactive": False}, page_size=5) == []
    for params, named in [
        ({"display_name": "Renamed"}, "display_name"),
        ({"add_aliases": [f"more@{t.name}"]}, "add_aliases"),
        ({"quota_mb": 100, "litigation_hold": False}, "quota_mb"),
    ]:
        sent = {"identity": box["id"], **params}
        assert problem(admin.run("mail", "Set-Mailbox", sent), 409)["parameter"] == named
    no_grant = admin.run(
        "mail",
        "Add-MailboxPermission",
        {"identity": box["id"], "user": t.enrolling.username, "access_rights": "FullAccess"},
    )
    problem(no_grant, 409)
    assert one(admin, box["id"]) == inactive

    lifted = result(
        admin.run("mail", "Set-Mailbox", {"identity": box["id"], "litigation_hold": False})
    )
    assert (lifted["litigationHold"], lifted["litigationHoldSince"]) == (False, None)
    removed = result(admin.run("mail", "Remove-Mailbox", {"identity": f"l@{t.name}"}))
    assert removed == lifted
    assert listed_mailboxes(admin, {}, page_size=5) == []
    assert stored_addresses(t, box["id"]) == {}
    assert problem(admin.run("mail", "Remove-Mailbox", {"identity": box["id"]}), 404)
    # its addresses are free again
    new_mailbox(admin, type="room", display_name="R", primary_address=box["primaryAddress"])


def test_permissions_are_added_listed_and_removed(t: Org, admin: Tokens) -> None:
    pat, sam = t.enrolling.username, t.password_only.username
    box = shared(admin, f"desk@{t.name}")

    def permission(name: str, user: str, right: str) -> httpx.Response:
        params = {"identity": f"desk@{t.name}", "user": user, "access_rights": right}
        return admin.run("mail", name, params)

    full = result(permission("Add-MailboxPermission", pat, "FullAccess"))
    pat_id = full["trusteeId"]
    assert full == {
        "trusteeId": pat_id,
        "trusteeUserPrincipalName": pat,
        "accessRight": "FullAccess",
    }
    assert result(permission("Add-MailboxPermission", pat_id, "FullAccess")) == full  # no change
    send_as = result(permission("Add-MailboxPermission", pat, "SendAs"))
    sams = result(permission("Add-MailboxPermission", sam, "FullAccess"))
    listed = result(admin.run("mail", "Get-MailboxPermission", {"identity": box["id"]}))
    assert listed == [full, send_as, sams]

    problem_right = problem(permission("Add-MailboxPermission", pat, "ReadOnly"), 400)
    assert problem_right["parameter"] == "access_rights"
    assert (
        problem(permission("Add-MailboxPermission", f"nobody@{t.name}", "SendAs"), 404)["parameter"]
        == "user"
    )
    own = new_mailbox(admin, user=pat)
    to_owner = admin.run(
        "mail",
        "Add-MailboxPermission",
        {"identity": own["id"], "user": pat, "access_rights": "SendAs"},
    )
    assert problem(to_owner, 400)["parameter"] == "user"
    assert result(admin.run("mail", "Get-MailboxPermission", {"identity": pat})) == []

    assert result(permission("Remove-MailboxPermission", pat, "SendAs")) == send_as
    assert problem(permission("Remove-MailboxPermission", pat, "SendAs"), 404)
    listed = result(admin.run("mail", "Get-MailboxPermission", {"identity": box["id"]}))
    assert listed == [full, sams]
    missing = admin.run("mail", "Get-MailboxPermission", {"identity": f"nobody@{t.name}"})
    assert problem(missing, 404)["parameter"] == "identity"

    # removing the mailbox takes its permissions with it
    result(admin.run("mail", "Remove-Mailbox", {"identity": box["id"]}))
    with t.server.authority.store.begin() as conn:
        left = conn.execute(
            select(mailbox_permissions.c.trustee_id).where(
                mailbox_permissions.c.mailbox_id == box["id"]
            )
        ).all()
    assert left == []


def test_a_role_group_scoped_to_a_department_manages_only_its_mailboxes(
    t: Org, admin: Tokens
) -> None:
    alice = new_user(admin, "alice", "Sales")
    carol = new_user(admin, "carol", "Sales")
    bob = new_user(admin, "bob", "Marketing")
    dave = new_user(admin, "dave", "Marketing")
    alices = new_mailbox(admin, user=alice["userPrincipalName"])
    bobs = new_mailbox(admin, user=bob["id"])
    desk = shared(admin, f"desk@{t.name}")
    sam = scoped_role_holder(
        admin, "Sales mail", "Mail Recipients Administrator", "Sales"
    )  # two factors (A8)

    # listings keep to the scope: not Marketing's mailbox, not the tenant's shared one
    assert listed_mailboxes(sam, {}, page_size=1) == [alices]
    # out of scope is not found, in the same words as what does not exist
    assert sam.run("mail", "Get-Mailbox", {"identity": bobs["id"]}).status_code == 404
    assert listed_mailboxes(sam, {"type": "shared"}, page_size=5) == []
    assert len(listed_mailboxes(admin, {}, page_size=5)) == 3

    changed = result(
        sam.run("mail", "Set-Mailbox", {"identity": alices["id"], "display_name": "Alice A."})
    )
    assert changed["displayName"] == "Alice A."
    carols = new_mailbox(sam, user=carol["id"])
    assert carols["userId"] == carol["id"]
    statistics = result(sam.run("mail", "Get-MailboxStatistics", {"identity": alices["id"]}))
    assert statistics["id"] == alices["id"]
    # permissions are part of the mailbox: whoever manages it grants them, to anyone
    granted = result(
        sam.run(
            "mail",
            "Add-MailboxPermission",
            {"identity": alices["id"], "user": bob["id"], "access_rights": "FullAccess"},
        )
    )
    assert granted["trusteeId"] == bob["id"]

    refused = {
        "Set-Mailbox (Marketing)": sam.run(
            "mail", "Set-Mailbox", {"identity": bobs["id"], "display_name": "Mine now"}
        ),
        "Set-Mailbox (shared)": sam.run(
            "mail", "Set-Mailbox", {"identity": desk["id"], "quota_mb": 100}
        ),
        "New-Mailbox (Marketing user)": sam.run("mail", "New-Mailbox", {"user": dave["id"]}),
        "New-Mailbox (shared)": sam.run(
            "mail",
            "New-Mailbox",
            {"type": "shared", "display_name": "S", "primary_address": f"s@{t.name}"},
        ),
        "Get-MailboxStatistics": sam.run(
            "mail", "Get-MailboxStatistics", {"identity": bob["userPrincipalName"]}
        ),
        "Get-MailboxPermission": sam.run("mail", "Get-MailboxPermission", {"identity": desk["id"]}),
        "Add-MailboxPermission": sam.run(
            "mail",
            "Add-MailboxPermission",
            {"identity": bobs["id"], "user": alice["id"], "access_rights": "SendAs"},
        ),
    }
    for what, response in refused.items():
        assert response.status_code == 403, (what, response.text)
        assert response.json()["reason"] == "out_of_scope", what
    # a refusal names the mailbox as the caller did, and tells nothing more about it
    assert bobs["primaryAddress"] not in refused["Set-Mailbox (Marketing)"].json()["detail"]
    assert one(admin, bobs["id"]) == bobs
    assert one(admin, desk["id"]) == desk
    assert admin.run("mail", "Get-Mailbox", {"identity": dave["id"]}).status_code == 404

    # each refusal is in the audit log
    with t.server.authority.store.begin() as conn:
        denied = conn.execute(
            select(audit_events.c.data).where(
                audit_events.c.tenant_id == t.tenant.id,
                audit_events.c.actor_name == t.password_only.username,
                audit_events.c.outcome == "denied",
            )
        ).all()
    commands = sorted(d.data["command"] for d in denied)
    assert commands == sorted(what.split(" ")[0] for what in refused)
    assert all(d.data["service"] == "mail" and d.data["error"] == "forbidden" for d in denied)
    assert any(
        d.data["parameters"]["identity"] == bobs["id"]
        and d.data["parameters"]["display_name"] == "Mine now"
        for d in denied
    )

    # removing is sensitive: a second factor older than the step-up window is asked again
    # (sam holds a role, so sam's sign-in had two factors: A8)
    t.server.advance(t.tenant.policy.step_up_window + 60)
    step_up = sam.run("mail", "Remove-Mailbox", {"identity": alices["id"]})
    assert step_up.status_code == 401
    assert "insufficient_user_authentication" in step_up.headers["www-authenticate"]


def test_concurrent_changes_keep_one_mailbox_per_user_and_the_aliases_copy_whole(
    t: Org, admin: Tokens
) -> None:
    token = admin("mail")

    def run(name: str, params: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{t.server.base_url}/api/mail/commands/{name}",
            json=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        created = list(
            pool.map(lambda _: run("New-Mailbox", {"user": t.enrolling.username}), range(6))
        )
        assert sorted(r.status_code for r in created) == [200] + [409] * 5
        box = next(r.json()["result"] for r in created if r.status_code == 200)
        added = list(
            pool.map(
                lambda i: run(
                    "Set-Mailbox", {"identity": box["id"], "add_aliases": [f"a{i}@{t.name}"]}
                ),
                range(12),
            )
        )
    assert [r.status_code for r in added] == [200] * 12
    final = one(admin, box["id"])
    assert final["aliases"] == sorted(f"a{i}@{t.name}" for i in range(12))
    assert_addresses_stored(t, final)
