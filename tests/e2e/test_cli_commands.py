"""Service commands on the command line (S2, S5): built from the catalogs, typed parameters,
output formats, ``--query`` and ``--property``, exit codes, and help with no network."""

from __future__ import annotations

import csv
import io
import json
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from bastion.server import seed
from tests.cli.helpers import Cli, sign_in
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess


def test_output_formats(t: Org, cli: Cli) -> None:
    users = cli.json("directory", "get-user")
    names = [u["userPrincipalName"] for u in users]
    assert sorted(names) == sorted(
        [t.admin.username, t.enrolling.username, t.password_only.username]
    )
    # not a terminal: JSON by default, and nothing but the results on stdout
    default = cli.run("directory", "get-user")
    assert json.loads(default.stdout) == users and default.stderr == ""
    lines = cli.ok("directory", "get-user", "-o", "jsonl").splitlines()
    assert [json.loads(line)["userPrincipalName"] for line in lines] == names
    rows = list(csv.DictReader(io.StringIO(cli.ok("directory", "get-user", "-o", "csv"))))
    assert [r["userPrincipalName"] for r in rows] == names
    assert {r["enabled"] for r in rows} == {"true"}
    listed = yaml.safe_load(cli.ok("directory", "get-user", "-o", "yaml"))
    assert [u["userPrincipalName"] for u in listed] == names
    table = cli.ok("directory", "get-user", "-o", "table").splitlines()
    assert table[0].split()[:2] == ["userPrincipalName", "displayName"]
    assert set(table[1]) <= {"-", " "} and len(table) == 2 + len(names)
    assert table[2].split()[0] == names[0]
    # a single object (not a listing) as name : value lines
    mfa = cli.ok("directory", "get-user-mfa", "--identity", t.admin.username, "-o", "table")
    fields = {line.split(" : ")[0].strip(): line.split(" : ")[1] for line in mfa.splitlines()}
    assert fields["mfaState"] == "enforced" and fields["methods"] == "totp"


def test_query_and_property(t: Org, cli: Cli) -> None:
    enforced = cli.json(
        "directory", "get-user", "--query", "[?mfaState=='enforced'].userPrincipalName"
    )
    assert enforced == [t.admin.username]
    picked = cli.json("directory", "get-user", "--property", "USERPRINCIPALNAME,mfa*")
    assert picked[0] == {"userPrincipalName": t.admin.username, "mfaState": "enforced"}
    header = cli.ok("directory", "get-user", "-o", "csv", "--property", "mfaState")
    assert header.splitlines() == ["mfaState", "enforced", "enabled", "disabled"]
    bad = cli.run("directory", "get-user", "--property", "nonsense")
    assert bad.returncode == 2 and "no property 'nonsense'" in bad.stderr
    assert "userPrincipalName" in bad.stderr  # says which there are
    broken = cli.run("directory", "get-user", "--query", "[?")
    assert broken.returncode == 2 and "JMESPath" in broken.stderr


def test_parameters_are_typed_from_the_catalog(t: Org, cli: Cli) -> None:
    upn = f"robin@{t.name}"
    made = cli.json(
        "directory", "new-user", "--user-principal-name", upn, "--display-name", "Robin",
        "--mfa-state", "DISABLED",  # an allowed value, in any case
    )  # fmt: skip
    assert made["userPrincipalName"] == upn and made["mfaState"] == "disabled"
    cli.ok("directory", "disable-user", "--identity", upn)
    disabled = [u["userPrincipalName"] for u in cli.json("directory", "get-user", "--no-enabled")]
    assert disabled == [upn]
    assert cli.json("directory", "get-user", "--enabled", "false") == cli.json(
        "directory", "get-user", "--no-enabled"
    )
    enabled = cli.json("directory", "get-user", "--enabled")
    assert upn not in {u["userPrincipalName"] for u in enabled} and len(enabled) == 3
    # arrays: comma-separated and repeated
    address = f"team@{t.name}"
    cli.json(
        "mail", "new-mailbox", "--type", "shared", "--display-name", "Team",
        "--primary-address", address, "--aliases", f"a@{t.name},b@{t.name}",
        "--aliases", f"c@{t.name}",
    )  # fmt: skip
    [team] = cli.json("mail", "get-mailbox", "--identity", address)
    assert team["aliases"] == [f"a@{t.name}", f"b@{t.name}", f"c@{t.name}"]
    # checked before anything is sent
    for args, message in [
        (["sites", "new-site", "--storage-quota-mb", "lots"], "not a whole number"),
        (["sites", "new-site", "--storage-quota-mb", "0"], "less than 1"),
        (["mail", "get-mailbox", "--type", "castle"], "not one of: user, shared, room"),
        (["mail", "get-mailbox", "--inactive", "perhaps"], "not true or false"),
        (["directory", "search-audit-log", "--start", "yesterday"], "ISO 8601"),
    ]:
        result = cli.run(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_exit_codes(t: Org, cli: Cli) -> None:
    cases = [
        (["directory", "get-user-mfa", "--identity", f"nobody@{t.name}"], 3, "nobody"),
        (["mail", "get-mailbox-statistics", "--identity", "nobody@nowhere"], 3, "no mailbox"),
        (["directory", "get-user-mfa"], 2, "needs --identity"),
        (["directory", "get-user", "--bogus", "1"], 2, "unrecognized arguments: --bogus"),
        (["directory", "get-usr"], 2, "Did you mean 'get-user'?"),
        (["mial", "get-mailbox"], 2, "Did you mean 'mail'?"),
        (["sites", "new-site", "--url", "/nowhere/x", "--title", "X",
          "--owner", t.admin.username], 2, "url"),  # refused by the server: 400
    ]  # fmt: skip
    for args, code, message in cases:
        result = cli.run(*args)
        assert result.returncode == code and message in result.stderr, (args, result)
        assert result.stdout == "" and result.stderr.startswith("bastion: error: ")
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    # PowerShell names work too
    assert cli.json("directory", "Get-UserMfa", "--identity", t.admin.username)["mfaState"]


def test_help_comes_from_the_catalog_with_no_network(t: Org, cli: Cli) -> None:
    cli.ok("mail", "get-mailbox", "--page-size", "1")  # the catalog is now cached
    # a proxy that does not exist: any request would fail
    dead = ["--proxy", "http://127.0.0.1:9", "--retries", "0"]
    service = cli.run(*dead, "mail", "--help")
    assert service.returncode == 0, service.stderr
    listed = " ".join(service.stdout.split())
    assert "get-mailbox List mailboxes in primary address order, with their addresses" in listed
    assert "remove-mailbox Delete a mailbox with its content" in listed
    assert "permissions. [sensitive]" in listed
    command = cli.run(*dead, "mail", "get-mailbox", "--help")
    assert command.returncode == 0, command.stderr
    text = " ".join(command.stdout.split())
    assert "--type {user,shared,room}" in text and "--inactive [true|false], --no-inactive" in text
    assert "--page-size N" in text and "--checkpoint FILE" in text and "--all" in text
    assert "Only mailboxes of this type" in text
    sites = " ".join(cli.ok("sites", "new-site", "--help").split())
    assert "default: 25600" in sites and "1 to 26214400" in sites and "required" in sites


def test_an_ended_sign_in_stops_a_non_interactive_command_with_exit_4(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(
        server, session_lifetime=60, idle_timeout=60, access_token_lifetime=60, step_up_window=60
    )
    cli = sign_in(t, tmp_path / "config")
    assert cli.json("directory", "get-user", "--page-size", "1")
    server.advance(120)  # the access token and the sign-in itself have ended
    result = cli.run("--non-interactive", "directory", "get-user", timeout=20)
    assert result.returncode == 4, result.stderr
    assert "sign-in" in result.stderr and "User name" not in result.stderr
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    # no sign-in at all
    fresh = Cli(tmp_path / "empty")
    fresh.ok("profile", "add", "x", "--url", server.base_url, "--tenant", t.name)
    none = fresh.run("directory", "get-user", "--non-interactive", timeout=20)
    assert none.returncode == 4 and "no sign-in" in none.stderr


def test_the_command_path_imports_nothing_heavy(t: Org, cli: Cli) -> None:
    """S9 of the brief: no rich, prompt_toolkit, pydantic or SQLAlchemy on the way to a
    service command (python -X importtime lists every module imported)."""
    seed.seed_population(
        t.server.authority.store, t.tenant.id, domain=t.name, count=3, now=t.server.now()
    )
    cli.ok("mail", "get-mailbox", "--page-size", "1")
    result = cli.run("mail", "get-mailbox", "--identity", f"user0000001@{t.name}")
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 1
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bastion", "mail", "get-mailbox",
         "--identity", f"user0000001@{t.name}"],
        capture_output=True, text=True, env=cli.env(), timeout=60,
    )  # fmt: skip
    assert traced.returncode == 0, traced.stderr
    modules = {
        line.split("|")[-1].strip().split(".")[0]
        for line in traced.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {"rich", "prompt_toolkit", "pydantic", "sqlalchemy", "starlette", "click", "yaml"}
    assert "httpx" in modules and not modules & heavy, modules & heavy


def test_the_readme_examples_run(t: Org, cli: Cli, tmp_path: Path) -> None:
    """Every ``bastion`` line of the README's "Command line" example, on a test tenant (the
    interactive ones, connect and shell, have their own tests)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("bastion ")]
    assert len(commands) >= 10
    seed.seed_population(
        t.server.authority.store, t.tenant.id, domain=t.name, count=3, now=t.server.now()
    )
    python = shlex.quote(sys.executable)
    (tmp_path / "pw.txt").write_text(secrets.token_urlsafe(18) + "\n")  # a --password-file
    for line in commands:
        if line.split()[1] in ("connect", "shell"):
            continue
        text = line.replace("contoso", t.name).replace("bastion ", f"{python} -m bastion ", 1)
        result = subprocess.run(
            ["/bin/sh", "-c", text], cwd=tmp_path, env=cli.env(), capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, (line, result.stderr)
    assert (tmp_path / "mailboxes.jsonl").read_text().count("\n") == 3
