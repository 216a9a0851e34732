"""What a script receives is what it believes it received (docs/decisions/0026).

- A Get whose ``--identity`` names nothing is an error (404, exit 3, ``NotFoundError``),
  in every service, and the call is still in the audit log.
- A listing lists every object unless ``--first N`` asks for fewer; when that cuts, stderr
  says so, and ``--query`` sees what was listed. The shell's ``-ResultSize`` follows.
- On a terminal a listing shows the total the server counted and ends with a summary line;
  a pipe or a log gets neither.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pexpect
import pytest
from sqlalchemy import select

import bastion
from bastion.client import NotFoundError
from bastion.server import seed
from bastion.store.schema import audit_events, mailboxes
from tests.cli.helpers import Cli
from tests.support.flows import Org
from tests.support.server import ServerProcess


@pytest.fixture(autouse=True)
def population(t: Org, server: ServerProcess) -> None:
    """The tenant ``t`` holds 250 seeded users, more than a page of any listing."""
    store = server.authority.store
    seed.seed_population(store, t.tenant.id, domain=t.name, count=250, now=server.now())


def addresses(t: Org) -> set[str]:
    with t.server.authority.store.begin() as conn:
        found = conn.execute(
            select(mailboxes.c.primary_address).where(mailboxes.c.tenant_id == t.tenant.id)
        )
        return set(found.scalars())


#: every Get-* command that takes an optional identity and lists otherwise, by service
GETS = [
    ("directory", "get-user", "user"),
    ("directory", "get-group", "group"),
    ("mail", "get-mailbox", "mailbox"),
    ("sites", "get-site", "site"),
    ("chat", "get-chat-user", "chat user"),
]


def test_a_get_of_an_identity_that_names_nothing_is_not_found(t: Org, cli: Cli) -> None:
    for service, command, noun in GETS:
        missing = cli.run(service, command, "--identity", "no-such")
        assert missing.returncode == 3, (command, missing.returncode, missing.stderr)
        assert missing.stdout == ""  # not an empty list a script would take for an answer
        assert f"no {noun} 'no-such' in this tenant" in missing.stderr, missing.stderr
        assert "Traceback" not in missing.stderr
    # an identity that names something still gets it, as a list of one
    [me] = cli.json("directory", "get-user", "--identity", t.admin.username)
    assert me["userPrincipalName"] == t.admin.username
    [box] = cli.json("mail", "get-mailbox", "--identity", f"user0000001@{t.name}")
    assert box["primaryAddress"] == f"user0000001@{t.name}"
    # a listing with a filter that matches nothing is still an empty list, not an error
    assert cli.json("directory", "get-user", "--department", "No Such Department") == []
    # the refused call is in the audit log, as a failure
    with t.server.authority.store.begin() as conn:
        records = conn.execute(
            select(audit_events.c.data, audit_events.c.outcome).where(
                audit_events.c.tenant_id == t.tenant.id, audit_events.c.type == "command"
            )
        ).all()
    failed = [r for r in records if r.data["command"] == "Get-Mailbox" and r.outcome == "failure"]
    assert len(failed) == 1 and failed[0].data["parameters"]["identity"] == "no-such"
    assert failed[0].data["error"] == "not-found"


def test_not_found_in_the_library_and_the_shell(
    t: Org, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    with bastion.connect(profile="test", config_dir=cli.config_dir, interactive=False) as conn:
        with pytest.raises(NotFoundError, match="no mailbox 'no-such'") as caught:
            conn.mail.get_mailbox(identity="no-such")
        assert caught.value.status == 404 and caught.value.exit_code == 3
        with pytest.raises(NotFoundError, match="no site 'no-such'"):
            conn.sites.get_site(identity="no-such")
    script = "Get-Mailbox no-such\nGet-User -Identity " + t.admin.username + "\n"
    shell = cli.run("shell", input=script)
    assert shell.returncode == 3 and "error: no mailbox 'no-such'" in shell.stderr
    assert t.admin.username in shell.stdout  # and the shell went on


def test_a_listing_is_whole_unless_first_asks_for_fewer(t: Org, cli: Cli) -> None:
    expected = addresses(t)
    assert len(expected) == 250  # more than the server's page of 100
    # every object by default, with nothing on stderr
    whole = cli.run("mail", "get-mailbox", "--property", "primaryAddress")
    assert whole.returncode == 0 and whole.stderr == ""
    assert {m["primaryAddress"] for m in json.loads(whole.stdout)} == expected
    # --query runs over the whole listing
    assert cli.json("mail", "get-mailbox", "--query", "length(@)") == 250
    # --all is still accepted, and changes nothing
    assert len(cli.json("mail", "get-mailbox", "--all", "--page-size", "30")) == 250
    # --first cuts, and says so on stderr with the command that goes on
    first = cli.run("mail", "get-mailbox", "--first", "120", "--property", "primaryAddress")
    assert first.returncode == 0
    head = [m["primaryAddress"] for m in json.loads(first.stdout)]
    assert len(head) == 120
    assert "(the first 120 objects, as asked: there are more;" in first.stderr
    go_on = shlex.split(first.stderr.split("this continues: ", 1)[1].rstrip(")\n"))
    assert "--first" not in go_on
    rest = cli.run(*go_on[1:])
    assert rest.returncode == 0, rest.stderr
    tail = [m["primaryAddress"] for m in json.loads(rest.stdout)]
    assert len(head) + len(tail) == 250 and set(head) | set(tail) == expected
    # a --first that does not cut says nothing
    enough = cli.run("mail", "get-mailbox", "--first", "1000", "--query", "length(@)")
    assert enough.returncode == 0 and json.loads(enough.stdout) == 250 and enough.stderr == ""
    assert cli.json("mail", "get-mailbox", "--first", "7", "--query", "length(@)") == 7
    # a checkpoint is for a whole listing
    new_file = str(cli.config_dir / "new.checkpoint")
    refused = cli.run("mail", "get-mailbox", "--first", "7", "--checkpoint", new_file)
    assert refused.returncode == 2 and "--first" in refused.stderr and refused.stdout == ""


def test_the_shell_lists_every_object_unless_result_size_says_otherwise(t: Org, cli: Cli) -> None:
    # more than Exchange's default -ResultSize of 1000
    store = t.server.authority.store
    seed.seed_population(store, t.tenant.id, domain=t.name, count=1005, now=t.server.now())
    expected = addresses(t)
    shell = cli.run("shell", input="Get-Mailbox -Type user\n")
    assert shell.returncode == 0 and shell.stderr == "", shell.stderr
    rows = shell.stdout.splitlines()[2:]  # after the header and its rule
    shown = {word for row in rows for word in row.split() if word in expected}
    assert len(rows) == 1005 and shown == expected
    limited = cli.run("shell", input="Get-Mailbox -ResultSize 5\n")
    assert len(limited.stdout.splitlines()[2:]) == 5
    assert "-ResultSize Unlimited lists every one" in limited.stderr


def test_a_listing_on_a_terminal_shows_its_total_and_a_summary(
    t: Org, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"

    def on_a_terminal(*words: str) -> str:
        command = shlex.join(cli.command("mail", "get-mailbox", *words))
        child = pexpect.spawn(
            "/bin/sh", ["-c", f"{command} > {shlex.quote(str(out))}"],
            env={**cli.env(), "TERM": "xterm"}, encoding="utf-8", timeout=60,
            dimensions=(24, 160),
        )  # fmt: skip
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        return str(child.before)

    screen = on_a_terminal("--page-size", "50")
    assert "of 250" in screen  # the bar's total, which the first page counted
    assert re.search(r"mail Get-Mailbox: 250 objects in \d+\.\d s \([\d,]+/s\)", screen), screen
    assert len(json.loads(out.read_text())) == 250
    cut = on_a_terminal("--first", "100", "--page-size", "50")
    assert re.search(r"mail Get-Mailbox: 100 of 250 objects in ", cut), cut
    assert "(the first 100 of 250 objects, as asked" in cut
    # with stderr not a terminal: no bar, no summary (and no count asked of the server)
    plain = cli.run("mail", "get-mailbox", "--page-size", "50")
    assert plain.returncode == 0 and plain.stderr == ""


def test_the_library_asks_for_a_count_with_the_first_page(
    t: Org, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    with bastion.connect(profile="test", config_dir=cli.config_dir, interactive=False) as conn:
        counted = conn.mail.get_mailbox(count=True, page_size=100)
        assert counted.total == 250
        assert len(list(counted)) == 250 and counted.pages_fetched == 3
        assert conn.mail.get_mailbox().total is None  # only when asked
        shared = conn.mail.get_mailbox(type="shared", count=True)
        assert shared.total == 0 and list(shared) == []


if os.name == "nt":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="terminals")
