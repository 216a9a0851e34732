"""A profile's proxy password at rest (S8, docs/decisions/0026): sealed apart from the
tokens, never in ``profiles.json``, still used for every request, and kept by
``bastion disconnect`` (which wipes the tokens and their key)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bastion
from bastion.client import add_profile, get_profile
from tests.cli.helpers import sign_in
from tests.client.players import Player
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess


def every_file(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file())


def test_the_proxy_password_is_sealed_used_and_kept_by_disconnect(
    server: ServerProcess, tmp_path: Path, proxy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    t: Org = make_tenant(server)
    config = tmp_path / "config"
    proxy = f"http://corp:s3cret@127.0.0.1:{proxy_port}"
    cli = sign_in(t, config, proxy=proxy)  # signed in through the proxy
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    stored = (config / "profiles.json").read_text()
    assert "s3cret" not in stored and f"corp@127.0.0.1:{proxy_port}" in stored
    assert "s3cret" not in every_file(config)  # in no file at all: sealed
    # every command goes through the proxy with its password
    [me] = cli.json("directory", "get-user", "--identity", t.admin.username)
    assert me["userPrincipalName"] == t.admin.username
    assert get_profile("test", config_dir=config).proxy == proxy
    listed = cli.json("profile", "list")
    assert [p["proxy"] for p in listed] == [f"http://corp:***@127.0.0.1:{proxy_port}"]
    # disconnect wipes the sign-in, not the proxy password
    cli.ok("disconnect")
    assert not list((config / "tokens").glob("*.json"))
    assert get_profile("test", config_dir=config).proxy == proxy
    server.advance(30)  # the next one-time code
    again = bastion.connect(profile="test", method="browser", prompt=Player(t), config_dir=config)
    with again:
        assert [u["id"] for u in again.directory.get_user(identity=t.admin.username)]
    # removing the profile removes its sealed password too
    cli.ok("profile", "remove", "test")
    assert not list((config / "secrets").glob("*.json"))


def test_a_password_kept_in_plain_text_by_an_older_version_is_sealed_on_the_next_write(
    server: ServerProcess, tmp_path: Path, proxy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = make_tenant(server)
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    proxy = f"http://corp:s3cret@127.0.0.1:{proxy_port}"
    body = {"url": server.base_url, "tenant": t.name, "method": "browser", "proxy": proxy}
    (config / "profiles.json").write_text(json.dumps({"current": "old", "profiles": {"old": body}}))
    (config / "profiles.json").chmod(0o600)
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    add_profile("new", server.base_url, t.name, config_dir=config)
    assert "s3cret" not in (config / "profiles.json").read_text()
    assert get_profile("old", config_dir=config).proxy == proxy
    with bastion.connect(
        profile="old", method="browser", prompt=Player(t), config_dir=config
    ) as conn:  # through the proxy, with the password unsealed
        assert conn.directory.get_user(identity=t.admin.username)
