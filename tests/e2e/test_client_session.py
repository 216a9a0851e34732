"""Session options honoured everywhere (S4), listings that resume after an interruption (S6),
profiles (S15) and catalogs kept on disk."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import bastion
from bastion.client import (
    ListingIncomplete,
    NetworkError,
    ProxyError,
    add_profile,
    status,
)
from tests.client.players import Player
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess


def test_every_request_goes_through_the_proxy_with_its_credentials(
    t: Org, tmp_path: Path, proxy_port: int
) -> None:
    good = f"http://corp:s3cret@127.0.0.1:{proxy_port}"
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url,
        t.name,
        method="browser",
        prompt=player,
        proxy=good,
        config_dir=tmp_path,
    )
    assert list(conn.directory.get_user(identity=t.admin.username))
    # The sign-in itself goes through the proxy: with wrong credentials it cannot start.
    wrong = f"http://corp:wrong@127.0.0.1:{proxy_port}"
    with pytest.raises(ProxyError) as caught:
        bastion.connect(
            t.server.base_url, t.name, method="browser", prompt=Player(t), proxy=wrong,
            config_dir=tmp_path / "other",
        )  # fmt: skip
    message = str(caught.value)
    assert "407" in message and "credentials" in message and "wrong" not in message
    assert caught.value.exit_code == 1


def test_the_proxy_from_the_environment_and_from_a_profile(
    t: Org, tmp_path: Path, proxy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://corp:wrong@127.0.0.1:{proxy_port}")
    with pytest.raises(ProxyError):
        bastion.connect(t.server.base_url, t.name, interactive=False, config_dir=tmp_path)
    monkeypatch.delenv("HTTP_PROXY")
    add_profile(
        "corp", t.server.base_url, t.name, proxy=f"http://corp:no@127.0.0.1:{proxy_port}",
        config_dir=tmp_path,
    )  # fmt: skip
    with pytest.raises(ProxyError):
        bastion.connect(profile="corp", interactive=False, config_dir=tmp_path)


def test_a_listing_interrupted_by_the_server_resumes_where_it_stopped(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(server)
    conn = bastion.connect(
        server.base_url, t.name, method="browser", prompt=Player(t), retries=0,
        config_dir=tmp_path,
    )  # fmt: skip
    for n in range(3):
        conn.directory.new_user(user_principal_name=f"u{n}@{t.name}")
    everyone = [u["id"] for u in conn.directory.get_user(page_size=100)]
    assert len(everyone) == 6
    listing = conn.directory.get_user(page_size=2)
    got = [next(listing)["id"], next(listing)["id"]]
    server.stop()
    try:
        with pytest.raises(ListingIncomplete) as caught:
            got.extend(u["id"] for u in listing)
    finally:
        server.restart()
    stopped = caught.value
    assert stopped.count == 2 and stopped.exit_code == 5
    assert isinstance(stopped.cause, NetworkError) and str(stopped.count) in str(stopped)
    rest = conn.directory.get_user(page_size=2, cursor=stopped.cursor)
    assert got + [u["id"] for u in rest] == everyone


def test_a_profile_connects_and_reports_its_status(t: Org, tmp_path: Path) -> None:
    add_profile("work", t.server.base_url, t.name, method="browser", config_dir=tmp_path)
    player = Player(t)
    conn = bastion.connect(prompt=player, config_dir=tmp_path)  # the current profile
    assert conn.profile == "work" and conn.cache is not None
    assert conn.cache.path.name == "work.json"
    conn.chat.get_meeting_policy()
    found = status(config_dir=tmp_path)
    assert found.profile == "work" and found.signed_in and found.account
    assert found.account.username == t.admin.username and found.issuer == t.issuer
    # the same server and tenant, given by URL, use the profile and its sign-in
    same = bastion.connect(t.server.base_url, t.name, interactive=False, config_dir=tmp_path)
    assert same.profile == "work" and same.sites.get_site() is not None
    assert len(player.opened) == 1


def test_catalogs_are_kept_on_disk_and_revalidated_with_their_etag(t: Org, tmp_path: Path) -> None:
    conn = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=Player(t), config_dir=tmp_path
    )
    conn.directory.get_user(identity=t.admin.username)
    kept = {p: p.read_bytes() for p in (tmp_path / "cache").glob("*.json")}
    assert len(kept) >= 2  # discovery and the directory's catalog
    catalog_file = next(p for p, raw in kept.items() if b"/api/directory/commands" in raw)
    entry = json.loads(kept[catalog_file])
    assert entry["etag"] == f'"{entry["body"]["version"]}"'
    again = bastion.connect(t.server.base_url, t.name, interactive=False, config_dir=tmp_path)
    answers: list[tuple[str, int]] = []
    again._http.client.event_hooks["response"].append(
        lambda response: answers.append((response.request.url.path, response.status_code))
    )
    again.directory.get_user(identity=t.admin.username)
    # discovery is fresh for minutes: read from disk; the catalog (no-cache) is revalidated
    # with its ETag and comes back as a 304, without a body
    assert ("/api/directory/commands", 304) in answers
    assert not any(path.endswith("openid-configuration") for path, _ in answers)
    assert json.loads(catalog_file.read_bytes())["body"] == entry["body"]
    version = again.directory.catalog().version
    assert version == conn.directory.catalog().version == entry["body"]["version"]
    # within one connection the catalog is asked for once
    again.directory.get_user(identity=t.admin.username)
    assert [a for a in answers if a[0].endswith("/commands")] == [("/api/directory/commands", 304)]


def test_status_says_until_when_the_sign_in_lasts(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server, session_lifetime=7200, idle_timeout=1800)
    before = time.time()
    conn = bastion.connect(
        server.base_url, t.name, method="browser", prompt=Player(t), config_dir=tmp_path
    )
    found = conn.status()
    assert found.session_expires_at is not None
    assert before + 1800 - 5 <= found.session_expires_at <= time.time() + 1800
    # each renewal moves the idle end, up to the session's absolute end (two hours)
    sites = t.audience("sites")
    for _ in range(4):
        server.advance(1500)
        conn.auth.access_token(sites, reject=conn.auth.access_token(sites))
    ends = status(config_dir=tmp_path, url=server.base_url, tenant=t.name).session_expires_at
    assert ends is not None and time.time() + 1200 - 30 <= ends <= time.time() + 1200
