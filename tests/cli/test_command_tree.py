"""The built-in commands: one list, which the parser is built from and the dispatch reads;
each command's verbs run from a frozen options value with the output streams injected."""

from __future__ import annotations

import argparse
import ast
import io
import json
from pathlib import Path

import pytest

import bastion.cli
from bastion.cli import parser as cli_parser
from bastion.cli.client_side import auth_status, profile
from bastion.cli.flags import SessionFlags
from bastion.cli.main import main
from bastion.cli.operator import tenant
from bastion.cli.operator.storage import PasswordFlags, StorageFlags
from bastion.cli.render.records import OutputFlags


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BASTION_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    monkeypatch.delenv("BASTION_PROFILE", raising=False)
    return tmp_path / "config"


def _extra(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    extra = commands.add_parser("extra", help="a command added in a test")
    extra.set_defaults(handler=lambda args: 7)


def test_a_command_added_to_the_list_is_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_parser, "COMMANDS", (*cli_parser.COMMANDS, ("extra", _extra)))
    assert cli_parser.builtin_commands()[-1] == "extra"
    assert "extra" in cli_parser.build_parser().subcommands
    assert main(["extra"]) == 7  # its handler, not a service named "extra"


def test_a_command_listed_under_another_name_stops_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_parser, "COMMANDS", (*cli_parser.COMMANDS, ("other", _extra)))
    with pytest.raises(RuntimeError, match="does not register 'other'"):
        cli_parser.build_parser()


def test_the_client_side_commands_are_those_of_its_modules() -> None:
    assert cli_parser.client_side_commands() == (
        "connect", "auth", "disconnect", "profile", "shell", "completion",
    )  # fmt: skip


def test_profile_verbs_run_from_their_options(capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    add = profile.AddOptions(
        name="lab",
        url="http://127.0.0.1:9",
        tenant="lab",
        method="device",
        session=SessionFlags(timeout=5.0),
        current=True,
        replace=False,
        err=err,
    )
    assert profile.run_add(add) == 0
    assert err.getvalue().startswith("Profile 'lab' for http://127.0.0.1:9")
    assert err.getvalue().endswith(" saved (current).\n")
    listed = profile.ListOptions(OutputFlags(format="json", properties=("name", "timeout")))
    assert profile.run_list(listed) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "lab", "timeout": 5.0}]
    use = profile.NameOptions("lab", err=io.StringIO())
    assert profile.run_use(use) == 0
    assert "'lab'" in use.err.getvalue() and "is now current" in use.err.getvalue()


def test_auth_status_without_a_profile_says_so_on_its_stream() -> None:
    err = io.StringIO()
    options = auth_status.StatusOptions(profile=None, output=OutputFlags("json"), err=err)
    assert auth_status.run(options) == 4
    assert err.getvalue().startswith("bastion: not signed in: there is no profile yet.")


def test_the_options_come_from_the_parsed_flags() -> None:
    args = cli_parser.build_parser().parse_args(
        ["--timeout", "3", "profile", "add", "p", "--url", "http://127.0.0.1:9", "--tenant", "t"]
    )
    options = profile.AddOptions.from_args(args)
    assert (options.name, options.tenant, options.method) == ("p", "t", "auto")
    assert options.session == SessionFlags(timeout=3.0)
    assert not options.current and not options.replace


def test_tenant_verbs_run_from_their_options(tmp_path: Path) -> None:
    storage = StorageFlags(data_dir=tmp_path / "data")
    out, err = io.StringIO(), io.StringIO()
    create = tenant.CreateOptions(
        name="contoso",
        display_name="Contoso",
        admin=None,
        password=PasswordFlags(),
        policy={"session_lifetime": 600, "idle_timeout": 900},
        storage=storage,
        out=out,
        err=err,
    )
    assert tenant.run_create(create) == 0
    created = json.loads(out.getvalue())
    assert (created["name"], created["displayName"]) == ("contoso", "Contoso")
    assert err.getvalue().startswith("note: the idle timeout is longer than the session")
    shown = io.StringIO()
    assert tenant.run_show(tenant.ShowOptions("contoso", storage, out=shown)) == 0
    assert json.loads(shown.getvalue()) == created


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_client_side_imports_no_server_part() -> None:
    """The client commands and the CLI's shared modules import, even inside a function,
    only ``bastion.client``, the CLI's own client-side and shared modules and the core's
    errors: never the operator side, the entry point, or any part of the server."""
    cli = Path(bastion.cli.__file__).parent
    shared = ["flags.py", "secret_input.py", "help_examples.py", "error_line.py"]
    files = [cli / name for name in shared]
    files += sorted((cli / "client_side").rglob("*.py")) + sorted((cli / "render").rglob("*.py"))
    allowed = ("bastion.client", "bastion.cli.client_side", "bastion.cli.render")
    allowed += tuple(f"bastion.cli.{name.removesuffix('.py')}" for name in shared)
    wrong = {
        f"{path.relative_to(cli)}: {name}"
        for path in files
        for name in _imported(path)
        if name.startswith("bastion")
        and name != "bastion.core.errors"  # the core's error tree (the shell catches it)
        and not name.startswith(allowed)
    }
    assert files and wrong == set()
