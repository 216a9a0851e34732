"""Signing in from the command line (S1, S3, S4, S8, S15): ``bastion connect`` in the
terminal with a second factor, ``auth status``, ``disconnect`` revoking at the server,
session options honoured by every request (the sign-in included), and named profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect

from bastion.client.cache import TokenCache
from tests.cli.helpers import Cli, sign_in
from tests.client.players import DEVICE_CODE, Player
from tests.support.flows import Org, Person, make_tenant, refresh
from tests.support.server import ServerProcess


def connect_in_terminal(cli: Cli, t: Org, user: Person, *args: str) -> pexpect.spawn:
    """``bastion connect --method terminal`` on a terminal, answered as ``user``."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bastion", "connect", "--url", t.server.base_url, "--tenant", t.name,
         "--method", "terminal", *args],
        env=cli.env(), encoding="utf-8", timeout=30,
    )  # fmt: skip
    child.expect_exact("User name: ")
    child.sendline(user.username)
    child.expect_exact(f"Password for {user.username}: ")
    child.sendline(user.password)
    return child


def test_connect_in_the_terminal_with_mfa_then_status_and_disconnect(
    t: Org, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "config")
    child = connect_in_terminal(cli, t, t.admin)
    child.expect_exact("One-time code")
    child.sendline(t.admin.code(t.server))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert f"Signed in to {t.issuer} as {t.admin.username}" in child.before
    # the profile is named after the tenant and is now current
    status = cli.json("auth", "status")
    assert status["signedIn"] and status["account"] == t.admin.username
    assert status["profile"] == t.name and status["issuer"] == t.issuer
    assert status["method"] == "terminal" and status["secondFactor"] is True
    assert status["keyStorage"] == f"key file {tmp_path / 'config' / 'keys' / t.name}.key"
    assert status["signInEnds"]  # until when
    table = cli.ok("auth", "status", "-o", "table")
    assert f"account      : {t.admin.username}" in table
    # every service, on that one sign-in, with no prompt
    assert cli.json("directory", "get-user", "--identity", t.admin.username, "--non-interactive")
    assert cli.json("chat", "get-meeting-policy", "--non-interactive")
    os.environ["BASTION_KEY_STORAGE"] = "file"
    try:
        refresh_token = TokenCache(tmp_path / "config", t.name).load().refresh_token
    finally:
        del os.environ["BASTION_KEY_STORAGE"]
    assert refresh_token
    gone = cli.run("disconnect")
    assert gone.returncode == 0 and "revoked" in gone.stderr
    assert refresh(t, refresh_token).json()["error"] == "invalid_grant"  # revoked at the server
    assert not (tmp_path / "config" / "tokens" / f"{t.name}.json").exists()
    assert not (tmp_path / "config" / "keys" / f"{t.name}.key").exists()
    after = cli.run("auth", "status", "-o", "json")
    assert after.returncode == 4 and json.loads(after.stdout)["signedIn"] is False
    assert "bastion connect" in after.stderr
    needed = cli.run("directory", "get-user", "--non-interactive")
    assert needed.returncode == 4 and needed.stdout == ""


def test_connect_with_a_device_code_as_over_ssh(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server, device_poll_interval=1)
    # stderr is read here rather than shown on a terminal: a person watches it
    cli = Cli(tmp_path / "config", extra_env={"BASTION_INTERACTIVE": "1"})
    process = subprocess.Popen(
        cli.command("connect", "--url", t.server.base_url, "--tenant", t.name,
                    "--method", "device", "--profile", "ssh"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli.env(),
    )  # fmt: skip
    assert process.stderr is not None
    shown = process.stderr.readline()  # the code and the address, on stderr
    match = DEVICE_CODE.search(shown)
    assert match and f"{t.issuer}/device" in shown, shown
    player = Player(t)  # approves on "another device", signing in with the second factor
    try:
        player.approve_device(match.group(1))
    finally:
        player.close()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out == "" and f"Signed in to {t.issuer} as {t.admin.username}" in err
    assert cli.json("auth", "status")["method"] == "device"


def test_a_password_only_account_and_a_mistyped_password(t: Org, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "config")
    wrong = Person(t.password_only.username, "not-the-password")
    child = connect_in_terminal(cli, t, wrong, "--profile", "sam")
    child.expect_exact("User name")  # asked again, with the reason shown first
    assert "password" in child.before.lower()
    child.sendline("")  # the name offered by default
    child.expect_exact("Password for")
    child.sendline(t.password_only.password)
    child.expect(pexpect.EOF)  # no second factor asked of this account
    child.close()
    assert child.exitstatus == 0, child.before
    assert "One-time code" not in child.before
    assert cli.json("auth", "status")["profile"] == "sam"


def test_session_options_reach_every_request_the_sign_in_included(
    t: Org, tmp_path: Path, proxy_port: int
) -> None:
    good = f"http://corp:s3cret@127.0.0.1:{proxy_port}"
    wrong = f"http://corp:wrong@127.0.0.1:{proxy_port}"
    cli = Cli(tmp_path / "config")
    # the sign-in goes through the proxy: with wrong credentials it cannot even start
    refused = cli.run(
        "connect", "--url", t.server.base_url, "--tenant", t.name, "--method", "terminal",
        "--proxy", wrong, "--retries", "0",
    )  # fmt: skip
    assert refused.returncode == 1 and "407" in refused.stderr and "credentials" in refused.stderr
    assert "wrong" not in refused.stderr  # the proxy's password is not shown
    child = connect_in_terminal(cli, t, t.admin, "--proxy", good, "--timeout", "20")
    child.expect_exact("One-time code")
    child.sendline(t.admin.code(t.server))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    [profile] = cli.json("profile", "list")
    assert profile["proxy"] == f"http://corp:***@127.0.0.1:{proxy_port}"
    assert profile["timeout"] == 20
    # the profile's proxy carries the commands; a wrong one given on the command line wins
    assert cli.json("directory", "get-user", "--identity", t.admin.username)
    bad = cli.run("directory", "get-user", "--proxy", wrong, "--retries", "0")
    assert bad.returncode == 1 and "407" in bad.stderr and "wrong" not in bad.stderr
    missing = cli.run("directory", "get-user", "--ca-bundle", str(tmp_path / "none.pem"))
    assert missing.returncode == 2 and "CA bundle" in missing.stderr
    assert cli.run("directory", "get-user", "--retries", "11").returncode == 2


def test_profiles_select_the_tenant(server: ServerProcess, tmp_path: Path) -> None:
    first, second = make_tenant(server), make_tenant(server)
    config = tmp_path / "config"
    sign_in(first, config, profile="one")
    cli = sign_in(second, config, profile="two")

    def users(*args: str, env: dict[str, str] | None = None) -> set[str]:
        chosen = Cli(config, extra_env=env)
        return {u["userPrincipalName"] for u in chosen.json(*args, "directory", "get-user")}

    assert users() == users("--profile", "one")  # the first profile is current
    assert first.admin.username in users("--profile", "one")
    assert second.admin.username in users("--profile", "two")
    assert second.admin.username in users(env={"BASTION_PROFILE": "two"})
    cli.ok("profile", "use", "two")
    assert second.admin.username in users()
    listed = {p["name"]: p for p in cli.json("profile", "list")}
    assert listed["two"]["current"] and not listed["one"]["current"]
    assert listed["one"]["tenant"] == first.name and listed["one"]["url"] == server.base_url
    cli.ok(
        "profile", "add", "three", "--url", server.base_url, "--tenant", second.name,
        "--method", "device", "--retries", "1",
    )  # fmt: skip
    three = {p["name"]: p for p in cli.json("profile", "list")}["three"]
    assert three["method"] == "device" and three["retries"] == 1 and not three["current"]
    assert cli.run("profile", "add", "three", "--url", server.base_url,
                   "--tenant", second.name).returncode == 2  # fmt: skip
    assert cli.run("--profile", "three", "auth", "status").returncode == 4
    removed = cli.run("profile", "remove", "one")
    assert removed.returncode == 0 and "revoked" in removed.stderr
    assert set({p["name"] for p in cli.json("profile", "list")}) == {"two", "three"}
    nope = cli.run("profile", "remove", "one")
    assert nope.returncode == 2 and "no profile 'one'" in nope.stderr
    unknown = cli.run("--profile", "zzz", "directory", "get-user")
    assert unknown.returncode == 2 and "no profile 'zzz'" in unknown.stderr


def test_a_sensitive_command_asks_for_the_second_factor_again(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(server, step_up_window=60)
    cli = sign_in(t, tmp_path / "config", method="terminal")
    cli.ok("directory", "new-group", "--name", "old-team")
    server.advance(120)  # the second factor is no longer recent
    refused = cli.run("--non-interactive", "directory", "remove-group", "--identity", "old-team")
    assert refused.returncode == 4 and "second factor" in refused.stderr, refused.stderr
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bastion", "directory", "remove-group", "--identity", "old-team", "-o", "json"],
        env=cli.env(), encoding="utf-8", timeout=30,
    )  # fmt: skip
    asked = []
    while True:
        found = child.expect(["User name", "Password for", "One-time code", pexpect.EOF])
        if found == 3:
            break
        asked.append(found)
        answers = ["", t.admin.password, t.admin.code(t.server)]
        child.sendline(answers[found])
    child.close()
    assert child.exitstatus == 0, child.before
    assert asked == [2]  # only the one-time code: no password, no user name
    assert "old-team" not in {g["name"] for g in cli.json("directory", "get-group")}
