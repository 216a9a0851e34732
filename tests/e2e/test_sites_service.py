"""The sites service over HTTP: sites, their owners, members, storage, and scoped admins."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from bastion.store.schema import sites
from tests.support.flows import Org
from tests.support.plane import Tokens, every_page, new_user, result, scoped_role_holder
from tests.support.server import ServerProcess

COMMANDS = {
    "Get-Site",
    "New-Site",
    "Set-Site",
    "Remove-Site",
    "Get-SiteMember",
    "Add-SiteMember",
    "Remove-SiteMember",
}


def listed_sites(tokens: Tokens, params: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
    """Get-Site page by page, following the cursors."""
    return every_page(tokens, "sites", "Get-Site", params, page_size)


def new_site(admin: Tokens, url: str, owner: str, **more: Any) -> dict[str, Any]:
    site: dict[str, Any] = result(
        admin.run("sites", "New-Site", {"url": url, "title": url, "owner": owner, **more})
    )
    return site


def test_catalog_lists_every_command_with_schemas(server: ServerProcess) -> None:
    body = httpx.get(f"{server.base_url}/api/sites/commands").json()
    commands = {c["name"]: c for c in body["commands"]}
    assert commands.keys() == COMMANDS
    for name, entry in commands.items():
        assert entry["help"] and entry["parameters"]["additionalProperties"] is False
        assert entry["sensitive"] is name.startswith("Remove-"), name
        assert entry["lists"] is (name == "Get-Site"), name
    new = commands["New-Site"]["parameters"]
    assert set(new["required"]) == {"url", "title", "owner"}
    assert new["properties"]["storage_quota_mb"]["default"] == 25600
    assert new["properties"]["sharing"]["default"] == "ExistingExternalUsers"
    assert "/teams/" in new["properties"]["url"]["description"]
    output = commands["Get-Site"]["output"]["properties"]
    assert set(output) == {
        "id",
        "url",
        "title",
        "ownerId",
        "ownerUserPrincipalName",
        "storageQuotaMb",
        "storageUsedMb",
        "sharing",
        "createdAt",
    }
    members = commands["Get-SiteMember"]["output"]
    assert set(members["items"]["$ref"].split("/")[-1:]) == {"SiteMember"}


def test_sites_are_created_listed_in_pages_filtered_changed_and_removed(
    t: Org, admin: Tokens
) -> None:
    urls = ["/teams/delta", "/sites/alpha", "/sites/charlie", "/teams/bravo", "/sites/echo-2"]
    created = {url: new_site(admin, url, t.enrolling.username) for url in urls[:4]}
    created["/sites/echo-2"] = new_site(
        admin, "/sites/echo-2", t.password_only.username, storage_quota_mb=1024, sharing="Anyone"
    )
    alpha = created["/sites/alpha"]
    assert alpha["ownerUserPrincipalName"] == t.enrolling.username
    assert (alpha["storageQuotaMb"], alpha["storageUsedMb"], alpha["sharing"]) == (
        25600,
        0,
        "ExistingExternalUsers",
    )
    assert created["/sites/echo-2"]["sharing"] == "Anyone"

    listed = listed_sites(admin, {}, page_size=2)
    assert [s["url"] for s in listed] == sorted(urls)
    assert listed[0] == alpha

    by_url = admin.run("sites", "Get-Site", {"identity": "/SITES/ALPHA"}).json()
    assert by_url == {"items": [alpha], "next": None}
    by_id = admin.run("sites", "Get-Site", {"identity": alpha["id"]}).json()["items"]
    assert by_id == [alpha]
    sam_id = created["/sites/echo-2"]["ownerId"]
    for owner in (t.password_only.username, sam_id):
        owned = listed_sites(admin, {"owner": owner}, page_size=10)
        assert [s["url"] for s in owned] == ["/sites/echo-2"]
    assert listed_sites(admin, {"ownerless": True}, page_size=10) == []
    assert len(listed_sites(admin, {"ownerless": False}, page_size=10)) == 5
    nothing = admin.run("sites", "Get-Site", {"identity": "/sites/nothing-here"})
    assert nothing.status_code == 404
    assert listed_sites(admin, {"owner": "bad\x00name"}, page_size=10) == []

    changed = result(
        admin.run(
            "sites",
            "Set-Site",
            {
                "identity": "/sites/alpha",
                "title": "  Alpha team  ",
                "storage_quota_mb": 2048,
                "sharing": "Disabled",
            },
        )
    )
    assert changed == {
        **alpha,
        "title": "Alpha team",
        "storageQuotaMb": 2048,
        "sharing": "Disabled",
    }
    only_title = result(admin.run("sites", "Set-Site", {"identity": alpha["id"], "title": "A"}))
    assert only_title == {**changed, "title": "A"}

    removed = result(admin.run("sites", "Remove-Site", {"identity": "/sites/alpha"}))
    assert removed["id"] == alpha["id"]
    assert admin.run("sites", "Get-Site", {"identity": alpha["id"]}).status_code == 404
    for name in ("Set-Site", "Remove-Site", "Get-SiteMember"):
        gone = admin.run("sites", name, {"identity": "/sites/alpha"})
        assert gone.status_code == 404, name
        assert gone.headers["content-type"] == "application/problem+json"


BAD_NEW_SITE: list[tuple[dict[str, Any], str]] = [
    ({"url": "/sites/Sales"}, "url"),
    ({"url": "/pages/sales"}, "url"),
    ({"url": "/sites/"}, "url"),
    ({"url": "/sites/" + "a" * 65}, "url"),
    ({"url": "sites/sales"}, "url"),
    ({"url": "/sites/sales/more"}, "url"),
    ({"url": "/sites/sal_es"}, "url"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "line\nbreak"}, "title"),
    ({"storage_quota_mb": 0}, "storage_quota_mb"),
    ({"storage_quota_mb": 26214401}, "storage_quota_mb"),
    ({"sharing": "Everyone"}, "sharing"),
    ({"colour": "blue"}, "colour"),
]


def test_bad_input_names_the_parameter(t: Org, admin: Tokens) -> None:
    for params, named in BAD_NEW_SITE:
        sent = {"url": "/sites/fine", "title": "Fine", "owner": t.enrolling.username, **params}
        response = admin.run("sites", "New-Site", sent)
        assert response.status_code == 400, (params, response.text)
        body = response.json()
        assert body["parameter"] == named, params
        assert named in body["detail"], params
    # nothing was created
    assert admin.run("sites", "Get-Site", {}).json()["items"] == []
    site = new_site(admin, "/sites/fine", t.enrolling.username)
    for params, named in [
        ({"storage_quota_mb": "lots"}, "storage_quota_mb"),
        ({"sharing": "anyone"}, "sharing"),
        ({"title": "\x00"}, "title"),
        ({"url": "/sites/other"}, "url"),
        ({}, "identity"),
    ]:
        response = admin.run(
            "sites", "Set-Site", {"identity": site["id"], **params} if params else {}
        )
        assert response.status_code == 400, (params, response.text)
        assert response.json()["parameter"] == named, params


def test_a_taken_url_an_unknown_owner_and_a_bad_quota_change(t: Org, admin: Tokens) -> None:
    site = new_site(admin, "/teams/sales", t.enrolling.username)
    taken = admin.run(
        "sites", "New-Site", {"url": "/teams/sales", "title": "Again", "owner": t.admin.username}
    )
    assert taken.status_code == 409 and taken.json()["parameter"] == "url"
    # the same name under /sites is another URL
    new_site(admin, "/sites/sales", t.enrolling.username)
    nobody = admin.run(
        "sites", "New-Site", {"url": "/sites/x", "title": "X", "owner": f"nobody@{t.name}"}
    )
    assert nobody.status_code == 404 and nobody.json()["parameter"] == "owner"

    with t.server.authority.store.begin() as conn:
        conn.execute(update(sites).where(sites.c.id == site["id"]).values(storage_used_mb=5000))
    below = admin.run("sites", "Set-Site", {"identity": site["id"], "storage_quota_mb": 4999})
    assert below.status_code == 409, below.text
    problem = below.json()
    assert problem["parameter"] == "storage_quota_mb"
    assert "5000" in problem["detail"] and "at least 5000 MB" in problem["detail"]
    also_below = admin.run(
        "sites",
        "Set-Site",
        {"identity": site["id"], "storage_quota_mb": 10, "title": "Not applied either"},
    )
    assert also_below.status_code == 409
    exact = result(
        admin.run("sites", "Set-Site", {"identity": site["id"], "storage_quota_mb": 5000})
    )
    assert (exact["title"], exact["storageQuotaMb"], exact["storageUsedMb"]) == (
        "/teams/sales",
        5000,
        5000,
    )


def test_members_are_added_listed_and_removed_and_the_owner_stays(t: Org, admin: Tokens) -> None:
    pat, sam = t.enrolling.username, t.password_only.username
    site = new_site(admin, "/teams/project", pat)
    members = result(admin.run("sites", "Get-SiteMember", {"identity": "/teams/project"}))
    assert members == [{"userId": site["ownerId"], "userPrincipalName": pat, "role": "Owner"}]

    added = result(admin.run("sites", "Add-SiteMember", {"identity": site["id"], "user": sam}))
    assert added["userPrincipalName"] == sam and added["role"] == "Member"
    again = admin.run(
        "sites", "Add-SiteMember", {"identity": site["id"], "user": sam, "role": "Visitor"}
    )
    assert result(again) == {**added, "role": "Visitor"}
    admin_member = result(
        admin.run(
            "sites",
            "Add-SiteMember",
            {"identity": site["id"], "user": t.admin.username, "role": "Owner"},
        )
    )
    listed = result(admin.run("sites", "Get-SiteMember", {"identity": site["id"]}))
    assert [(m["userPrincipalName"], m["role"]) for m in listed] == sorted(
        [(pat, "Owner"), (sam, "Visitor"), (t.admin.username, "Owner")]
    )
    bad_role = admin.run(
        "sites", "Add-SiteMember", {"identity": site["id"], "user": sam, "role": "Admin"}
    )
    assert bad_role.status_code == 400 and bad_role.json()["parameter"] == "role"

    # the owner can be neither removed nor demoted
    owner_out = admin.run("sites", "Remove-SiteMember", {"identity": site["id"], "user": pat})
    assert owner_out.status_code == 409 and "owner" in owner_out.json()["detail"].lower()
    demoted = admin.run(
        "sites", "Add-SiteMember", {"identity": site["id"], "user": pat, "role": "Member"}
    )
    assert demoted.status_code == 409

    removed = result(admin.run("sites", "Remove-SiteMember", {"identity": site["id"], "user": sam}))
    assert removed == {**added, "role": "Visitor"}
    not_member = admin.run("sites", "Remove-SiteMember", {"identity": site["id"], "user": sam})
    assert not_member.status_code == 404

    # a new owner becomes an Owner member; then the previous one may leave
    moved = result(admin.run("sites", "Set-Site", {"identity": site["id"], "owner": sam}))
    assert moved["ownerUserPrincipalName"] == sam and moved["ownerId"] == added["userId"]
    result(admin.run("sites", "Remove-SiteMember", {"identity": site["id"], "user": pat}))
    listed = result(admin.run("sites", "Get-SiteMember", {"identity": site["id"]}))
    assert listed == sorted(
        [admin_member, {**added, "role": "Owner"}], key=lambda m: m["userPrincipalName"]
    )


def test_sites_of_a_removed_user_are_kept_ownerless_until_given_an_owner(
    t: Org, admin: Tokens
) -> None:
    leaver = new_user(admin, "leaver")
    site = new_site(admin, "/sites/leavers-site", leaver["id"])
    new_site(admin, "/sites/kept", t.enrolling.username)
    gone = result(admin.run("directory", "Remove-User", {"identity": leaver["id"]}))
    assert gone["sitesLeftOwnerless"] == 1

    ownerless = listed_sites(admin, {"ownerless": True}, page_size=10)
    assert ownerless == [{**site, "ownerId": None, "ownerUserPrincipalName": None}]
    assert [s["url"] for s in listed_sites(admin, {"ownerless": False}, page_size=10)] == [
        "/sites/kept"
    ]
    assert result(admin.run("sites", "Get-SiteMember", {"identity": site["id"]})) == []
    adopted = result(
        admin.run("sites", "Set-Site", {"identity": site["id"], "owner": t.enrolling.username})
    )
    assert adopted["ownerUserPrincipalName"] == t.enrolling.username
    assert listed_sites(admin, {"ownerless": True}, page_size=10) == []


def test_a_role_group_scoped_to_a_department_manages_only_its_sites(t: Org, admin: Tokens) -> None:
    alice = new_user(admin, "alice", "Sales")
    carol = new_user(admin, "carol", "Sales")
    bob = new_user(admin, "bob", "Marketing")
    sales = new_site(admin, "/teams/sales", alice["userPrincipalName"])
    marketing = new_site(admin, "/teams/marketing", bob["userPrincipalName"])
    orphan = new_site(admin, "/sites/orphan", carol["id"])
    result(admin.run("directory", "Remove-User", {"identity": carol["id"]}))
    sam = scoped_role_holder(
        admin, "Sales sites", "Sites Administrator", "Sales"
    )  # two factors (A8)

    # listings keep to the scope: not Marketing's site, not the tenant's ownerless one
    assert listed_sites(sam, {}, page_size=1) == [sales]
    # out of scope is not found, in the same words as what does not exist
    assert sam.run("sites", "Get-Site", {"identity": marketing["id"]}).status_code == 404
    assert listed_sites(sam, {"ownerless": True}, page_size=5) == []
    assert len(listed_sites(admin, {}, page_size=5)) == 3

    renamed = result(sam.run("sites", "Set-Site", {"identity": sales["id"], "title": "Sales"}))
    assert renamed["title"] == "Sales"
    result(sam.run("sites", "Add-SiteMember", {"identity": sales["id"], "user": bob["id"]}))
    created = result(
        sam.run(
            "sites",
            "New-Site",
            {"url": "/sites/sales-emea", "title": "EMEA", "owner": alice["id"]},
        )
    )
    assert created["ownerId"] == alice["id"]

    refused = [
        sam.run("sites", "Set-Site", {"identity": marketing["id"], "title": "Mine now"}),
        sam.run("sites", "Set-Site", {"identity": orphan["id"], "owner": alice["id"]}),
        sam.run("sites", "Set-Site", {"identity": sales["id"], "owner": bob["id"]}),
        sam.run("sites", "Get-SiteMember", {"identity": marketing["id"]}),
        sam.run("sites", "Add-SiteMember", {"identity": marketing["id"], "user": alice["id"]}),
        sam.run(
            "sites",
            "New-Site",
            {"url": "/sites/not-sales", "title": "No", "owner": bob["userPrincipalName"]},
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["reason"] == "out_of_scope"
    unchanged = listed_sites(admin, {"identity": marketing["id"]}, page_size=5)
    assert unchanged == [marketing]
    # members are part of the site: a Marketing colleague was added to the Sales site
    members = result(admin.run("sites", "Get-SiteMember", {"identity": sales["id"]}))
    assert [(m["userId"], m["role"]) for m in members] == [
        (alice["id"], "Owner"),
        (bob["id"], "Member"),
    ]

    # removing is sensitive: a second factor older than the step-up window is asked again
    # (sam holds a role, so sam's sign-in had two factors: A8)
    t.server.advance(t.tenant.policy.step_up_window + 60)
    step_up = sam.run("sites", "Remove-Site", {"identity": sales["id"]})
    assert step_up.status_code == 401
    assert "insufficient_user_authentication" in step_up.headers["www-authenticate"]
