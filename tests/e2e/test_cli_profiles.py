"""Profiles and the exit codes around them (S15): no profile at all is a sign-in to make
(exit 4, naming ``bastion connect``), not an unknown command; a ``connect`` that fails saves
nothing, so the corrected one simply runs; connecting to a second environment says which
profile it replaced as the current one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pexpect
import pytest

import bastion
from bastion.client import ConfigError
from tests.cli.helpers import Cli
from tests.e2e.test_cli_sign_in import connect_in_terminal
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess, free_port


def test_with_no_profile_a_command_says_to_connect_with_exit_4(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "config")
    for words in (["mail", "get-mailbox"], ["shell"], ["directory", "get-user", "-o", "json"]):
        result = cli.run(*words, timeout=30)
        assert result.returncode == 4, (words, result.stderr)
        assert "bastion connect --url URL --tenant NAME" in result.stderr, result.stderr
        assert "not a bastion command" not in result.stderr
        assert "Pass url" not in result.stderr and len(result.stderr.splitlines()) == 1
    # a mistyped built-in command is still a usage error, with a suggestion
    typo = cli.run("conect", "--url", "http://127.0.0.1:9", timeout=30)
    assert typo.returncode == 2 and "did you mean 'connect'" in typo.stderr


def test_a_failed_connect_saves_nothing_and_the_corrected_one_runs(t: Org, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "config")
    mistyped = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    failed = cli.run("connect", "--url", mistyped, "--tenant", t.name, "--retries", "0")
    assert failed.returncode == 1 and "cannot reach" in failed.stderr, failed.stderr
    wrong_tenant = cli.run("connect", "--url", t.server.base_url, "--tenant", "no-such-tenant")
    assert wrong_tenant.returncode == 3, wrong_tenant.stderr
    assert json.loads(cli.ok("profile", "list", "-o", "json")) == []
    child = connect_in_terminal(cli, t, t.password_only)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    [saved] = json.loads(cli.ok("profile", "list", "-o", "json"))
    assert saved["name"] == t.name and saved["url"] == t.server.base_url
    assert cli.json("auth", "status")["signedIn"] is True


def test_connecting_to_a_second_environment_says_it_became_current(
    server: ServerProcess, tmp_path: Path
) -> None:
    first, second = make_tenant(server), make_tenant(server)
    cli = Cli(tmp_path / "config")
    child = connect_in_terminal(cli, first, first.password_only)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bastion", "connect", "--url", server.base_url, "--tenant", second.name,
         "--method", "terminal"],
        env=cli.env(), encoding="utf-8", timeout=30,
    )  # fmt: skip
    child.expect_exact("User name: ")
    child.sendline(second.password_only.username)
    child.expect_exact("Password for")
    child.sendline(second.password_only.password)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    said = " ".join(child.before.split())
    assert f"profile '{second.name}', now current in place of '{first.name}'" in said, said
    assert f"bastion profile use {first.name}" in said
    assert cli.json("auth", "status")["profile"] == second.name


def test_hints_name_what_exists_where_the_user_is(t: Org, tmp_path: Path) -> None:
    """Item 5: the command line's hints name its commands and flags; the library's, its
    functions and parameters."""
    cli = Cli(tmp_path / "config")
    url = t.server.base_url
    cli.ok("profile", "add", "lab", "--url", url, "--tenant", t.name)
    unknown = cli.run("--profile", "zzz", "mail", "get-mailbox")
    assert unknown.returncode == 2
    assert "bastion connect --url URL --tenant NAME --profile zzz" in unknown.stderr
    again = cli.run("profile", "add", "lab", "--url", url, "--tenant", t.name)
    assert again.returncode == 2 and "give --replace" in again.stderr
    assert "replace_existing" not in again.stderr
    with pytest.raises(ConfigError) as raised:
        bastion.connect(profile="zzz", interactive=False, config_dir=tmp_path / "config")
    assert "add_profile" in str(raised.value) and "bastion connect" not in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        bastion.connect(interactive=False, config_dir=tmp_path / "empty")
    assert "connect() url and tenant" in str(raised.value)
