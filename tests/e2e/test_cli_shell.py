"""``bastion shell`` driven through a terminal (S14): completion of command names, parameter
names and allowed values from the catalogs, commands in PowerShell and CLI form on one
sign-in, tables, errors that do not end the session, and a history without passwords."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pexpect

from bastion.server import seed
from tests.cli.helpers import sign_in
from tests.support.flows import make_tenant
from tests.support.server import ServerProcess

_ESCAPES = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"


def drawn(text: str) -> str:
    """A pattern for ``text`` as a terminal shows it: prompt_toolkit may draw it in pieces,
    with control sequences between them."""
    return _ESCAPES.join(re.escape(ch) for ch in text)


def test_the_shell_completes_and_runs_commands(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server)
    store = server.authority.store
    seed.seed_population(store, t.tenant.id, domain=t.name, count=5, now=server.now())
    cli = sign_in(t, tmp_path / "config")
    env = {**cli.env(), "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        sys.executable, ["-m", "bastion", "shell"], env=env, encoding="utf-8", timeout=30,
        dimensions=(50, 220),
    )  # fmt: skip
    prompt = f"[test] {t.name}>"
    # Each step waits for output that only the command prints (the line typed is echoed,
    # and the prompt redrawn with it, before the command runs), then for the next prompt.
    try:
        child.expect_exact(prompt)
        # a command's name, then a parameter's, completed with TAB; the command runs
        child.send("Get-MailboxSta\t")
        child.expect(drawn("Get-MailboxStatistics"))
        child.send(" -Iden\t")
        child.expect(drawn("-Identity"))
        child.send(f" user0000001@{t.name}\r")
        child.expect_exact("percentUsed")  # a name : value list
        child.expect_exact(prompt)
        # an allowed value; a listing limited with -ResultSize, shown as a table
        child.send("Get-Mailbox -Ty\t")
        child.expect(drawn("-Type"))
        child.send(" us\t")
        child.expect(drawn("user"))
        child.send(" -ResultSize 2\r")
        child.expect(r"primaryAddress +aliases")
        child.expect_exact(f"user0000001@{t.name}")
        child.expect_exact("-ResultSize Unlimited lists every one")
        child.expect_exact(prompt)
        # a mistake is reported and the shell goes on
        child.send("Get-Mailbox -Bogus 1\r")
        child.expect_exact("Get-Mailbox has no parameter -Bogus")
        child.expect_exact(prompt)
        # CLI form, every option of the command line
        child.send(f"mail get-mailbox --identity user0000002@{t.name} -o json\r")
        child.expect_exact(f'"primaryAddress": "user0000002@{t.name}"')
        child.expect_exact(prompt)
        # a password typed in a command stays out of the history file
        child.send(
            f"New-User -UserPrincipalName kim@{t.name} -Password 'Kim-pw-4711!' "
            "-MfaState disabled\r"
        )
        child.expect(rf"userPrincipalName +: kim@{t.name}")  # the result, not the echo
        child.expect_exact(prompt)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "config" / "shell_history").read_text()
    assert f"Get-MailboxStatistics -Identity user0000001@{t.name}" in history
    assert "Get-Mailbox -Type user -ResultSize 2" in history
    assert "Kim-pw-4711" not in history
    # one sign-in served every command: nobody was asked anything
    assert "User name" not in (child.before or "")


def test_the_shell_reads_commands_from_a_pipe(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server)
    cli = sign_in(t, tmp_path / "config")
    lines = "\n".join(
        [
            f"Get-User -Identity {t.admin.username}",
            "Get-User -Enabled:$false",
            "directory get-user --property userPrincipalName -o jsonl",
            "exit",
            "Get-User",  # after exit: not run
        ]
    )
    result = cli.run("shell", input=lines + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count(t.admin.username) == 2 and '{"userPrincipalName":' in out
    assert out.count(t.enrolling.username) == 1  # only from the jsonl line
    failing = cli.run("shell", input=f"Get-UserMfa -Identity nobody@{t.name}\nGet-User\n")
    assert failing.returncode == 3 and t.admin.username in failing.stdout  # it went on
    assert failing.stderr.startswith("error: ") and "nobody" in failing.stderr
