"""Operator and service commands that take secrets or limits (docs/decisions/0026).

- ``bastion tenant set`` sets the limits given, and only those: a shorter session lifetime
  is not refused for the idle timeout nobody gave.
- A password is never taken from the command line (shell history, process lists): it is
  asked for without echo on a terminal, or read from stdin or a file; for the operator's
  ``user create``/``user set-password`` and for catalog parameters marked secret
  (``writeOnly``/``format: password``, e.g. ``directory new-user --password``).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pexpect

from bastion.directory import users
from bastion.directory.tenants import MAX_IDLE_SECONDS
from tests.cli.helpers import Cli, sign_in
from tests.support.flows import Org


def password_of(t: Org, upn: str, password: str) -> bool:
    auth = t.server.authority
    with auth.store.begin() as conn:
        user = users.require_user(conn, t.tenant.id, upn)
    return user.password_hash is not None and auth.hasher.verify(user.password_hash, password)


def exists(t: Org, upn: str) -> bool:
    with t.server.authority.store.begin() as conn:
        return users.lookup(conn, t.tenant.id, upn) is not None


def test_tenant_set_sets_only_the_limits_given(t: Org) -> None:
    before = json.loads(t.server.cli("tenant", "show", t.name).stdout)["policy"]
    changed = t.server.cli("tenant", "set", t.name, "--session-lifetime", "60", check=False)
    assert changed.returncode == 0, changed.stderr
    policy = json.loads(changed.stdout)["policy"]
    assert policy == {**before, "session_lifetime": 60}
    assert policy["idle_timeout"] == MAX_IDLE_SECONDS  # untouched, and not a reason to refuse
    assert "idle timeout is longer than the session lifetime" in changed.stderr
    # a limit given that is out of its own bounds is still refused, and changes nothing
    bad = t.server.cli("tenant", "set", t.name, "--idle-timeout", "7200", check=False)
    assert bad.returncode == 2 and "idle timeout" in bad.stderr
    assert json.loads(t.server.cli("tenant", "show", t.name).stdout)["policy"] == policy
    nothing = t.server.cli("tenant", "set", t.name, check=False)
    assert nothing.returncode == 2 and "--session-lifetime" in nothing.stderr


def test_operator_passwords_come_from_a_file_stdin_or_a_prompt(t: Org, tmp_path: Path) -> None:
    server = t.server
    secret = "Kim-pw-4711!"
    on_the_line = server.cli(
        "user", "create", "--tenant", t.name, f"kim@{t.name}", "--password", secret, check=False
    )
    assert on_the_line.returncode == 2 and secret not in on_the_line.stderr
    assert "shell history" in on_the_line.stderr and not exists(t, f"kim@{t.name}")
    # no terminal and nothing given: a usage error that says what to use
    unasked = server.cli("user", "create", "--tenant", t.name, f"kim@{t.name}", check=False)
    assert unasked.returncode == 2 and "--password-stdin" in unasked.stderr
    assert not exists(t, f"kim@{t.name}")
    # from a file, then from stdin
    path = tmp_path / "kim.pw"
    path.write_text(secret + "\n")
    made = server.cli("user", "create", "--tenant", t.name, f"kim@{t.name}", "--mfa",
                      "disabled", "--password-file", str(path))  # fmt: skip
    assert made.returncode == 0 and password_of(t, f"kim@{t.name}", secret)
    server.cli("user", "set-password", "--tenant", t.name, f"kim@{t.name}", "--password-stdin",
               input="Kim-new-pw-0815!\n")  # fmt: skip
    assert password_of(t, f"kim@{t.name}", "Kim-new-pw-0815!")
    # on a terminal: asked twice, without echo
    command = shlex.join(
        [sys.executable, "-m", "bastion", "user", "set-password", "--tenant", t.name,
         f"kim@{t.name}"]
    )  # fmt: skip
    child = pexpect.spawn(
        "/bin/sh", ["-c", command], env=server.env(), encoding="utf-8", timeout=60
    )
    child.expect_exact(f"New password for kim@{t.name}:")
    child.sendline("Kim-typed-pw-42!")
    child.expect_exact("(again):")
    child.sendline("Kim-typed-pw-42!")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Kim-typed-pw-42!" not in str(child.before)  # not echoed
    assert password_of(t, f"kim@{t.name}", "Kim-typed-pw-42!")


def test_secret_parameters_of_service_commands_stay_off_the_command_line(
    t: Org, tmp_path: Path
) -> None:
    cli: Cli = sign_in(t, tmp_path / "config")
    upn = f"robin@{t.name}"
    help_text = cli.ok("directory", "new-user", "--help")
    assert "--password-stdin" in help_text and "--password-file" in help_text
    secret = "Robin-pw-4711!"
    refused = cli.run("directory", "new-user", "--user-principal-name", upn, "--password", secret)
    assert refused.returncode == 2 and secret not in refused.stderr
    assert "shell history" in refused.stderr and not exists(t, upn)
    no_terminal = cli.run("directory", "new-user", "--user-principal-name", upn, "--password")
    assert no_terminal.returncode == 2 and "no terminal" in no_terminal.stderr
    assert not exists(t, upn)
    made = cli.run(
        "directory", "new-user", "--user-principal-name", upn, "--mfa-state", "disabled",
        "--password-stdin", input=secret + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert password_of(t, upn, secret)
    path = tmp_path / "robin.pw"
    path.write_text("Robin-new-pw-0815!\n")
    cli.ok("directory", "set-user", "--identity", upn, "--password-file", str(path))
    assert password_of(t, upn, "Robin-new-pw-0815!")
    command = shlex.join(cli.command("directory", "set-user", "--identity", upn, "--password"))
    child = pexpect.spawn(
        "/bin/sh", ["-c", command + " > /dev/null"], env=cli.env(), encoding="utf-8", timeout=60
    )
    child.expect_exact("A new password:")
    child.sendline("Robin-typed-pw-42!")
    child.expect_exact("(again):")
    child.sendline("Robin-typed-pw-42!")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert password_of(t, upn, "Robin-typed-pw-42!")
    # the shell's -Password alone asks too; with nobody to ask, it says what to type
    shell = cli.run("shell", input=f"Set-User -Identity {upn} -Password\n")
    assert shell.returncode == 2 and "-Password 'value'" in shell.stderr
