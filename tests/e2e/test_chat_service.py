"""The chat service over HTTP: meeting and messaging policies, who they apply to, and
scoped admins."""

from __future__ import annotations

from typing import Any

import httpx

from bastion.directory.chat_policies import MeetingSettings, MessagingSettings
from tests.support.flows import Org
from tests.support.plane import Tokens, every_page, result, scoped_role_holder
from tests.support.server import ServerProcess

COMMANDS = {
    "Get-MeetingPolicy",
    "New-MeetingPolicy",
    "Set-MeetingPolicy",
    "Get-MessagingPolicy",
    "New-MessagingPolicy",
    "Set-MessagingPolicy",
    "Grant-ChatPolicy",
    "Get-ChatUser",
}
MEETING_DEFAULTS = MeetingSettings().model_dump()
MESSAGING_DEFAULTS = MessagingSettings().model_dump()


def chat_users(tokens: Tokens, params: dict[str, Any], page_size: int = 100) -> list[Any]:
    return every_page(tokens, "chat", "Get-ChatUser", params, page_size)


def applied(tokens: Tokens, params: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """User principal name -> (meeting policy, messaging policy) that applies."""
    return {
        u["userPrincipalName"]: (u["meetingPolicy"], u["messagingPolicy"])
        for u in chat_users(tokens, params)
    }


def test_catalog_lists_every_command_with_schemas(server: ServerProcess) -> None:
    body = httpx.get(f"{server.base_url}/api/chat/commands").json()
    commands = {c["name"]: c for c in body["commands"]}
    assert commands.keys() == COMMANDS
    for name, entry in commands.items():
        assert entry["help"] and entry["parameters"]["additionalProperties"] is False
        assert entry["sensitive"] is False, name
        assert entry["lists"] is (name == "Get-ChatUser"), name
    # every setting is a parameter, in snake_case, with its type, default and help
    new = commands["New-MeetingPolicy"]["parameters"]
    assert set(new["properties"]) == {
        "name",
        "description",
        "allow_recording",
        "allow_transcription",
        "allow_anonymous_join",
        "auto_admitted_users",
        "max_participants",
    }
    assert new["required"] == ["name"]
    participants = new["properties"]["max_participants"]
    assert (participants["default"], participants["minimum"], participants["maximum"]) == (
        300,
        2,
        1000,
    )
    assert participants["description"] == "Largest meeting allowed."
    change = commands["Set-MessagingPolicy"]["parameters"]
    assert change["required"] == ["identity"]
    rating = change["properties"]["giphy_rating"]
    assert rating["default"] is None
    assert {"enum": ["Strict", "Moderate"], "type": "string"} in rating["anyOf"]
    assert "read_receipts" in change["properties"]
    output = commands["Get-MeetingPolicy"]["output"]["items"]["$ref"].split("/")[-1]
    meeting = commands["Get-MeetingPolicy"]["output"]["$defs"][output]["properties"]
    assert {"id", "name", "description", "allowRecording", "maxParticipants", "userCount"} <= set(
        meeting
    )
    user = commands["Get-ChatUser"]["output"]["properties"]
    assert {"userPrincipalName", "department", "meetingPolicy", "messagingPolicy"} <= set(user)


def test_policies_are_created_read_and_changed(t: Org, admin: Tokens) -> None:
    (global_meeting,) = result(admin.run("chat", "Get-MeetingPolicy", {}))
    assert global_meeting["name"] == "Global" and global_meeting["userCount"] == 3
    assert {k: global_meeting[k] for k in MEETING_DEFAULTS} == MEETING_DEFAULTS

    created = result(
        admin.run(
            "chat",
            "New-MeetingPolicy",
            {
                "name": "No recording",
                "description": "For legal",
                "allow_recording": False,
                "max_participants": 50,
            },
        )
    )
    assert {k: created[k] for k in MEETING_DEFAULTS} == {
        **MEETING_DEFAULTS,
        "allowRecording": False,
        "maxParticipants": 50,
    }
    assert (created["name"], created["description"], created["userCount"]) == (
        "No recording",
        "For legal",
        0,
    )
    listed = result(admin.run("chat", "Get-MeetingPolicy", {}))
    assert [p["name"] for p in listed] == ["Global", "No recording"]
    assert listed[1] == created
    for identity in ("No recording", "no RECORDING", created["id"]):
        assert result(admin.run("chat", "Get-MeetingPolicy", {"identity": identity})) == [created]

    changed = result(
        admin.run(
            "chat",
            "Set-MeetingPolicy",
            {
                "identity": "no recording",
                "allow_transcription": False,
                "auto_admitted_users": "OrganizerOnly",
            },
        )
    )
    assert changed == {
        **created,
        "allowTranscription": False,
        "autoAdmittedUsers": "OrganizerOnly",
    }
    global_changed = result(
        admin.run(
            "chat",
            "Set-MeetingPolicy",
            {"identity": "Global", "description": "Everyone else", "max_participants": 1000},
        )
    )
    assert global_changed == {
        **global_meeting,
        "description": "Everyone else",
        "maxParticipants": 1000,
    }
    # explicit nulls leave settings as they are
    same = result(
        admin.run("chat", "Set-MeetingPolicy", {"identity": "Global", "allow_recording": None})
    )
    assert same == global_changed

    (global_messaging,) = result(admin.run("chat", "Get-MessagingPolicy", {}))
    assert {k: global_messaging[k] for k in MESSAGING_DEFAULTS} == MESSAGING_DEFAULTS
    strict = result(
        admin.run(
            "chat",
            "New-MessagingPolicy",
            {"name": "Strict", "giphy_rating": "Strict", "read_receipts": "Everyone"},
        )
    )
    assert {k: strict[k] for k in MESSAGING_DEFAULTS} == {
        **MESSAGING_DEFAULTS,
        "giphyRating": "Strict",
        "readReceipts": "Everyone",
    }
    assert strict["description"] == ""
    changed_messaging = result(
        admin.run(
            "chat",
            "Set-MessagingPolicy",
            {"identity": strict["id"], "allow_giphy": False, "allow_edit_messages": False},
        )
    )
    assert changed_messaging == {**strict, "allowGiphy": False, "allowEditMessages": False}
    assert result(admin.run("chat", "Get-MessagingPolicy", {"identity": "strict"})) == [
        changed_messaging
    ]
    # the kinds are apart: no meeting policy is named Strict
    assert admin.run("chat", "Get-MeetingPolicy", {"identity": "Strict"}).status_code == 404


def test_bad_input_and_taken_names(t: Org, admin: Tokens) -> None:
    result(admin.run("chat", "New-MeetingPolicy", {"name": "Townhall"}))
    meeting, messaging = "MeetingPolicy", "MessagingPolicy"
    bad: list[tuple[str, dict[str, Any], int, str]] = [
        (f"New-{meeting}", {"name": "A", "max_participants": 1}, 400, "max_participants"),
        (f"New-{meeting}", {"name": "A", "max_participants": "many"}, 400, "max_participants"),
        (f"New-{meeting}", {"name": "A", "auto_admitted_users": "No"}, 400, "auto_admitted_users"),
        (f"New-{meeting}", {"name": "A", "allow_recording": "perhaps"}, 400, "allow_recording"),
        (f"New-{meeting}", {"name": "A", "allowRecording": False}, 400, "allowRecording"),
        (f"New-{meeting}", {"name": ""}, 400, "name"),
        (f"New-{meeting}", {"name": " \t "}, 400, "name"),
        (f"New-{meeting}", {"name": "A", "description": "x\x00y"}, 400, "description"),
        (f"New-{meeting}", {}, 400, "name"),
        (f"New-{meeting}", {"name": "Global"}, 409, "name"),
        (f"New-{meeting}", {"name": "global"}, 409, "name"),
        (f"New-{meeting}", {"name": " TOWNHALL "}, 409, "name"),
        (f"New-{messaging}", {"name": "Global"}, 409, "name"),
        (f"New-{messaging}", {"name": "A", "giphy_rating": "None"}, 400, "giphy_rating"),
        (f"Set-{meeting}", {"identity": "x", "max_participants": 1001}, 400, "max_participants"),
        (f"Set-{meeting}", {"identity": "Townhall", "name": "Renamed"}, 400, "name"),
        (f"Set-{meeting}", {"identity": "Nothing", "allow_recording": True}, 404, "identity"),
        (f"Set-{messaging}", {"identity": "Townhall"}, 404, "identity"),
        (f"Set-{messaging}", {"identity": "Global", "read_receipts": "Some"}, 400, "read_receipts"),
        (f"Get-{meeting}", {"identity": "Nothing"}, 404, "identity"),
        (f"Get-{messaging}", {"identity": 7}, 400, "identity"),
    ]  # fmt: skip
    for name, params, status, named in bad:
        response = admin.run("chat", name, params)
        assert response.status_code == status, (name, params, response.text)
        assert response.json()["parameter"] == named, (name, params)
        assert response.headers["content-type"] == "application/problem+json"
    # nothing changed
    meeting = result(admin.run("chat", "Get-MeetingPolicy", {}))
    assert [p["name"] for p in meeting] == ["Global", "Townhall"]
    assert all(p["maxParticipants"] == 300 for p in meeting)
    assert [p["name"] for p in result(admin.run("chat", "Get-MessagingPolicy", {}))] == ["Global"]


def test_granted_policies_apply_and_reset_to_global(t: Org, admin: Tokens) -> None:
    pat, sam, boss = t.enrolling.username, t.password_only.username, t.admin.username
    for name, department in (("dana", "Sales"), ("eli", "Sales"), ("fay", "Legal")):
        params = {"user_principal_name": f"{name}@{t.name}", "department": department}
        result(admin.run("directory", "New-User", params))
    dana, eli, fay = (f"{n}@{t.name}" for n in ("dana", "eli", "fay"))
    result(admin.run("chat", "New-MeetingPolicy", {"name": "Small", "max_participants": 10}))
    result(admin.run("chat", "New-MessagingPolicy", {"name": "Quiet", "allow_giphy": False}))

    everyone = chat_users(admin, {}, page_size=2)
    assert [u["userPrincipalName"] for u in everyone] == sorted([pat, sam, boss, dana, eli, fay])
    assert {(u["meetingPolicy"], u["messagingPolicy"]) for u in everyone} == {("Global", "Global")}

    granted = result(
        admin.run(
            "chat",
            "Grant-ChatPolicy",
            {"identity": dana, "policy_type": "meeting", "policy_name": "small"},
        )
    )
    assert (granted["userPrincipalName"], granted["department"]) == (dana, "Sales")
    assert (granted["meetingPolicy"], granted["messagingPolicy"]) == ("Small", "Global")
    fay_id = chat_users(admin, {"identity": fay})[0]["id"]
    for identity, kind, policy in ((fay_id, "meeting", "Small"), (fay, "messaging", "Quiet")):
        result(
            admin.run(
                "chat",
                "Grant-ChatPolicy",
                {"identity": identity, "policy_type": kind, "policy_name": policy},
            )
        )
    assert applied(admin, {"department": "Sales"}) == {
        dana: ("Small", "Global"),
        eli: ("Global", "Global"),
    }
    assert applied(admin, {"policy_name": "Small"}) == {
        dana: ("Small", "Global"),
        fay: ("Small", "Quiet"),
    }
    assert applied(admin, {"policy_name": "quiet", "policy_type": "messaging"}) == {
        fay: ("Small", "Quiet")
    }
    assert applied(admin, {"policy_name": "Quiet", "policy_type": "meeting"}) == {}
    assert set(applied(admin, {"policy_name": "Global", "policy_type": "meeting"})) == {
        pat,
        sam,
        boss,
        eli,
    }
    assert set(applied(admin, {"policy_name": "Global"})) == {pat, sam, boss, eli, dana}
    assert applied(admin, {"identity": fay_id}) == {fay: ("Small", "Quiet")}
    assert applied(admin, {"department": "Sales", "policy_name": "Quiet"}) == {}
    alone = admin.run("chat", "Get-ChatUser", {"policy_type": "meeting"})
    assert alone.status_code == 400 and alone.json()["parameter"] == "policy_type"

    counts = {p["name"]: p["userCount"] for p in result(admin.run("chat", "Get-MeetingPolicy", {}))}
    assert counts == {"Global": 4, "Small": 2}
    counts = {
        p["name"]: p["userCount"] for p in result(admin.run("chat", "Get-MessagingPolicy", {}))
    }
    assert counts == {"Global": 5, "Quiet": 1}

    nobody = f"nobody@{t.name}"
    small = "Small"
    wrong: list[tuple[dict[str, Any], int, str]] = [
        ({"identity": dana, "policy_type": "messaging", "policy_name": small}, 404, "policy_name"),
        ({"identity": nobody, "policy_type": "meeting", "policy_name": "Small"}, 404, "identity"),
        ({"identity": dana, "policy_type": "calls", "policy_name": "Small"}, 400, "policy_type"),
        ({"identity": dana, "policy_type": "meeting"}, 400, "policy_name"),
        ({"identity": dana, "policy_type": "meeting", "policy_name": ""}, 400, "policy_name"),
    ]  # fmt: skip
    for params, status, named in wrong:
        response = admin.run("chat", "Grant-ChatPolicy", params)
        assert response.status_code == status, (params, response.text)
        assert response.json()["parameter"] == named, params

    # Global, or null, takes the assignment away
    reset = result(
        admin.run(
            "chat",
            "Grant-ChatPolicy",
            {"identity": fay, "policy_type": "meeting", "policy_name": "Global"},
        )
    )
    assert (reset["meetingPolicy"], reset["messagingPolicy"]) == ("Global", "Quiet")
    reset = result(
        admin.run(
            "chat",
            "Grant-ChatPolicy",
            {"identity": fay, "policy_type": "messaging", "policy_name": None},
        )
    )
    assert (reset["meetingPolicy"], reset["messagingPolicy"]) == ("Global", "Global")
    assert applied(admin, {"policy_name": "Small"}) == {dana: ("Small", "Global")}
    # granting the same policy again changes nothing
    again = admin.run(
        "chat",
        "Grant-ChatPolicy",
        {"identity": dana, "policy_type": "meeting", "policy_name": "Small"},
    )
    assert result(again) == granted


def test_a_role_group_scoped_to_a_department_grants_only_to_its_users(
    t: Org, admin: Tokens
) -> None:
    for name, department in (("alice", "Sales"), ("adam", "Sales"), ("bob", "Marketing")):
        params = {"user_principal_name": f"{name}@{t.name}", "department": department}
        result(admin.run("directory", "New-User", params))
    alice, adam, bob = (f"{n}@{t.name}" for n in ("alice", "adam", "bob"))
    result(admin.run("chat", "New-MeetingPolicy", {"name": "Sales meetings"}))
    sam = scoped_role_holder(admin, "Sales chat", "Chat Administrator", "Sales")  # two factors (A8)

    listed = chat_users(sam, {}, page_size=1)
    assert [u["userPrincipalName"] for u in listed] == [adam, alice]
    assert sam.run("chat", "Get-ChatUser", {"identity": bob}).status_code == 404
    assert chat_users(sam, {"department": "Marketing"}) == []

    granted = result(
        sam.run(
            "chat",
            "Grant-ChatPolicy",
            {"identity": alice, "policy_type": "meeting", "policy_name": "Sales meetings"},
        )
    )
    assert granted["meetingPolicy"] == "Sales meetings"
    assert applied(sam, {"policy_name": "Sales meetings"}) == {alice: ("Sales meetings", "Global")}
    out_of_scope = sam.run(
        "chat",
        "Grant-ChatPolicy",
        {"identity": bob, "policy_type": "meeting", "policy_name": "Sales meetings"},
    )
    assert out_of_scope.status_code == 403, out_of_scope.text
    assert out_of_scope.json()["reason"] == "out_of_scope"
    assert applied(admin, {"identity": bob}) == {bob: ("Global", "Global")}

    # policies belong to the whole tenant: a scoped role group neither reads nor changes them
    for name, params in (
        ("Get-MeetingPolicy", {}),
        ("Get-MessagingPolicy", {"identity": "Global"}),
        ("New-MeetingPolicy", {"name": "Mine"}),
        ("Set-MeetingPolicy", {"identity": "Global", "allow_recording": False}),
        ("New-MessagingPolicy", {"name": "Mine"}),
        ("Set-MessagingPolicy", {"identity": "Global", "allow_giphy": False}),
    ):
        refused = sam.run("chat", name, params)
        assert refused.status_code == 403, (name, refused.text)
        assert refused.json()["command"] == name
    assert [p["name"] for p in result(admin.run("chat", "Get-MeetingPolicy", {}))] == [
        "Global",
        "Sales meetings",
    ]
    (global_meeting,) = result(admin.run("chat", "Get-MeetingPolicy", {"identity": "Global"}))
    assert global_meeting["allowRecording"] is True

    # and back to Global, within the scope
    reset = result(
        sam.run(
            "chat",
            "Grant-ChatPolicy",
            {"identity": alice, "policy_type": "meeting", "policy_name": None},
        )
    )
    assert reset["meetingPolicy"] == "Global"
