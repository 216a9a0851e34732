"""Messages that say what they mean (item 7): durations in human units, prompts that say why
they ask, examples in every built-in command's help and no reStructuredText in any help, and
"did you mean" for a mistyped option or command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pexpect

from bastion.cli.help_examples import EXAMPLES, leaves
from bastion.cli.main import build_parser
from tests.cli.helpers import Cli, sign_in
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess


def test_an_ended_sign_in_names_the_tenants_limit_in_human_units(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(
        server, session_lifetime=120, idle_timeout=120, access_token_lifetime=60, step_up_window=60
    )
    cli = sign_in(t, tmp_path / "config")
    server.advance(150)
    ended = cli.run("--non-interactive", "directory", "get-user", timeout=30)
    assert ended.returncode == 4, ended.stderr
    assert "limit of 2 minutes" in ended.stderr, ended.stderr
    assert "hours" not in ended.stderr


def test_a_step_up_prompt_says_what_it_is_for(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server, step_up_window=60)
    cli = sign_in(t, tmp_path / "config", method="terminal")
    cli.ok("directory", "new-group", "--name", "old-team")
    server.advance(120)
    refused = cli.run("--non-interactive", "directory", "remove-group", "--identity", "old-team")
    assert "needs a second factor from the last 1 minute." in refused.stderr, refused.stderr
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bastion", "directory", "remove-group", "--identity", "old-team"],
        env=cli.env(), encoding="utf-8", timeout=30,
    )  # fmt: skip
    child.expect_exact("Confirm with your second factor to run Remove-Group:")
    child.expect_exact("One-time code")
    child.sendline(t.admin.code(t.server))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_every_built_in_command_has_examples_that_parse() -> None:
    commands = leaves(build_parser())
    assert {name for name, _ in commands} <= set(EXAMPLES), set(name for name, _ in commands) - set(
        EXAMPLES
    )
    for name, _ in commands:
        words = name.split()
        shown = Cli(Path("/nonexistent")).run(*words, "--help")
        assert shown.returncode == 0 and "examples:" in shown.stdout, name
        assert "``" not in shown.stdout, name
        for _, line in EXAMPLES[name]:
            assert line in shown.stdout
            argv = shlex.split(line.split(" < ", 1)[0])
            assert argv[0] == "bastion"
            parsed = build_parser().parse_args(argv[1:])  # raises on an unknown option
            assert parsed.handler is not None


def test_service_help_has_no_restructuredtext(t: Org, tmp_path: Path) -> None:
    cli = sign_in(t, tmp_path / "config")
    for words in (["directory", "--help"], ["directory", "export-audit-log", "--help"]):
        shown = cli.run(*words)
        assert shown.returncode == 0, shown.stderr
        assert "``" not in shown.stdout and ":func:" not in shown.stdout
    assert "('bastion audit verify')" in cli.ok("directory", "export-audit-log", "--help")


def test_a_mistyped_option_or_command_gets_did_you_mean(t: Org, tmp_path: Path) -> None:
    cli = sign_in(t, tmp_path / "config")
    typo = cli.run("mail", "get-mailbox", "--identit", "alex")
    assert typo.returncode == 2 and "Did you mean '--identity'?" in typo.stderr, typo.stderr
    builtin = cli.run("connect", "--tenat", "x")
    assert builtin.returncode == 2 and "Did you mean '--tenant'?" in builtin.stderr
    choice = cli.run("audit", "verfy")
    assert choice.returncode == 2 and "Did you mean 'verify'?" in choice.stderr
    command = cli.run("mail", "get-mailboxx")
    assert command.returncode == 2 and "Did you mean 'get-mailbox'?" in command.stderr
