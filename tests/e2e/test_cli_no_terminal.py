"""Who can answer a sign-in (S5): a job with no terminal stops at once with exit 4 and one
line saying what to run; a terminal gets the device code; ``BASTION_INTERACTIVE`` forces
either way; the library shows the device code in a REPL and raises in a plain script; a
step-up follows the same rule.

The rule (docs/cli.md): prompting needs stdin and stderr to be terminals; showing a device
code needs stderr to be a terminal (or ``BASTION_INTERACTIVE=1``, or a REPL or notebook).
Every run without a terminal has a subprocess timeout: the old behaviour was to wait for a
device code's approval (up to 600 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect

from tests.cli.helpers import Cli, sign_in
from tests.client.players import DEVICE_CODE
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess

NO_PERSON = 30  # seconds: far more than exit 4 takes, far less than a device code waits


def signed_out(t: Org, tmp_path: Path, **env: str) -> Cli:
    """A current profile named ``job`` that was never signed in."""
    cli = Cli(tmp_path / "config", extra_env=env)
    cli.ok("profile", "add", "job", "--url", t.server.base_url, "--tenant", t.name, "--current")
    return cli


def as_a_job(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """``bastion`` as a scheduler runs it: stdin closed, stdout and stderr to files."""
    return subprocess.run(
        cli.command(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli.env(),
        timeout=NO_PERSON,
    )


def test_a_job_with_no_sign_in_exits_4_at_once_saying_what_to_run(t: Org, tmp_path: Path) -> None:
    cli = signed_out(t, tmp_path, DISPLAY="")
    result = as_a_job(cli, "mail", "get-mailbox")
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "no sign-in" in lines[0] and "'bastion connect --profile job'" in lines[0]
    assert "enter the code" not in result.stderr
    # the hint names the command line's own means, not the library's
    assert "connect()" not in lines[0] and "application" not in lines[0]


def test_connect_as_a_job_says_to_run_it_in_a_terminal_and_saves_nothing(
    t: Org, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "config", extra_env={"DISPLAY": ""})
    result = as_a_job(cli, "connect", "--url", t.server.base_url, "--tenant", t.name)
    assert result.returncode == 4, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Run this bastion connect in a terminal" in result.stderr
    assert cli.run("profile", "list", "-o", "json").stdout.strip() == "[]"


def test_a_job_whose_step_up_is_due_exits_4_at_once(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server, step_up_window=60)
    cli = sign_in(t, tmp_path / "config", method="terminal")
    cli.ok("directory", "new-group", "--name", "nightly-team")
    server.advance(120)  # the second factor is no longer recent
    result = as_a_job(cli, "directory", "remove-group", "--identity", "nightly-team")
    assert result.returncode == 4, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "second factor" in result.stderr and "in a terminal" in result.stderr
    assert "enter the code" not in result.stderr


def test_a_terminal_gets_the_device_code(t: Org, tmp_path: Path) -> None:
    cli = signed_out(t, tmp_path, DISPLAY="", WAYLAND_DISPLAY="")
    child = pexpect.spawn(
        sys.executable, ["-m", "bastion", "mail", "get-mailbox"],
        env=cli.env(), encoding="utf-8", timeout=NO_PERSON,
    )  # fmt: skip
    try:
        child.expect(DEVICE_CODE)  # auto, with no display: the device code, shown and waiting
        assert child.isalive()
    finally:
        child.close(force=True)


def test_bastion_interactive_forces_either_way(t: Org, tmp_path: Path) -> None:
    # =1: a person watches the log; the device code is shown with no terminal at all
    watched = signed_out(t, tmp_path / "a", BASTION_INTERACTIVE="1", DISPLAY="")
    process = subprocess.Popen(
        watched.command("mail", "get-mailbox"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=watched.env(),
    )  # fmt: skip
    try:
        assert process.stderr is not None
        assert DEVICE_CODE.search(process.stderr.readline())
    finally:
        process.kill()
        process.communicate(timeout=NO_PERSON)
    # =0: nobody, even on a terminal
    nobody = signed_out(t, tmp_path / "b", BASTION_INTERACTIVE="0")
    child = pexpect.spawn(
        sys.executable, ["-m", "bastion", "mail", "get-mailbox"],
        env=nobody.env(), encoding="utf-8", timeout=NO_PERSON,
    )  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4 and "bastion connect --profile job" in child.before


SCRIPT = """
import bastion
from bastion.client import SignInRequired
try:
    bastion.connect(profile="job", config_dir={config!r}, method="device")
except SignInRequired as exc:
    print("raised", exc.exit_code, exc)
"""


def test_the_library_raises_in_a_plain_script_and_shows_the_code_in_a_repl(
    t: Org, tmp_path: Path
) -> None:
    cli = signed_out(t, tmp_path)
    config = str(tmp_path / "config")
    script = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(config=config)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=cli.env(),
        timeout=NO_PERSON,
    )  # fmt: skip
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("raised 4 there is no sign-in")
    assert "connect(token=...)" in script.stdout  # the library's own means
    assert "enter the code" not in script.stderr
    # python -i is a REPL (sys.ps1), even fed from a pipe: a person reads what it shows
    repl = subprocess.Popen(
        [sys.executable, "-i", "-q"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli.env(),
    )  # fmt: skip
    try:
        assert repl.stdin is not None and repl.stderr is not None
        repl.stdin.write(SCRIPT.format(config=config) + "\n")
        repl.stdin.flush()
        for _ in range(20):  # the REPL's prompts come first on stderr
            line = repl.stderr.readline()
            if DEVICE_CODE.search(line) or not line:
                break
        assert DEVICE_CODE.search(line), line
    finally:
        repl.kill()
        repl.communicate(timeout=NO_PERSON)
