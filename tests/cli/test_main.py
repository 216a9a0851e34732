"""The ``bastion`` command itself: dispatch, errors on one line with their exit codes,
profiles (no server needed), checkpoint files, and a cheap ``--help``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli.client_side.services import checkpoint
from bastion.cli.client_side.services.run import redacted, resume_command
from bastion.cli.flags import Parser
from bastion.cli.main import build_parser, builtin_commands, main, positions
from bastion.client.errors import UsageError


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BASTION_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    monkeypatch.delenv("BASTION_PROFILE", raising=False)
    return tmp_path / "config"


def test_words_that_are_not_options() -> None:
    assert positions(["mail", "get-mailbox", "--identity", "a"]) == (0, 1)
    assert positions(["--profile", "p", "-o", "json", "mail", "get-x"]) == (4, 5)
    assert positions(["--non-interactive", "mail"]) == (1, None)
    assert positions(["--help"]) == (None, None)
    assert positions(["--", "mail"]) == (None, None)


def test_the_built_in_commands_are_read_from_the_parser() -> None:
    """No list is kept by hand: a command registered on a parser is one of its commands."""
    parser = Parser(prog="bastion")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("first")
    commands.add_parser("second").add_subparsers(dest="action").add_parser("verb")
    assert builtin_commands(parser) == ("first", "second")
    assert list(parser.subcommands["second"].subcommands) == ["verb"]
    assert parser.subcommands["first"].subcommands == {}
    assert builtin_commands() == builtin_commands(build_parser())
    assert {"connect", "profile", "serve", "tenant", "audit", "completion"} <= set(
        builtin_commands()
    )


@pytest.mark.parametrize("command", builtin_commands())
def test_every_built_in_command_is_known_to_the_dispatch(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A built-in command taken for a service's name would need a profile (exit 4)."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: bastion {command}")


def test_an_unknown_command_with_no_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conect"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bastion: error: 'conect' is not a bastion command")
    assert "did you mean 'connect'?" in err and "bastion connect --url" in err
    assert len(err.splitlines()) == 1


def test_profiles_need_no_server(capsys: pytest.CaptureFixture[str], config_dir: Path) -> None:
    url = "http://127.0.0.1:9"
    assert main(["profile", "add", "prod", "--url", url, "--tenant", "contoso"]) == 0
    assert main(["profile", "add", "lab", "--url", url + "/", "--tenant", "lab",
                 "--proxy", "http://u:pw@127.0.0.1:3128", "--timeout", "5"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["profile", "list", "-o", "json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["prod"]["current"] and not listed["lab"]["current"]
    assert listed["lab"]["url"] == url and listed["lab"]["proxy"] == "http://u:***@127.0.0.1:3128"
    assert main(["profile", "use", "lab"]) == 0
    assert main(["profile", "list", "-o", "csv", "--property", "name,current"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["prod,false", "lab,true"]
    assert main(["auth", "status", "-o", "json"]) == 4  # no sign-in in this profile
    status = json.loads(capsys.readouterr().out)
    assert status["profile"] == "lab" and status["signedIn"] is False
    assert main(["profile", "add", "bad", "--url", "http://example.org", "--tenant", "x"]) == 2
    assert "plain HTTP" in capsys.readouterr().err
    assert main(["profile", "remove", "lab"]) == 0
    assert main(["profile", "use", "lab"]) == 2
    assert (config_dir / "profiles.json").stat().st_mode & 0o777 == 0o600


def test_connect_checks_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connect", "--url", "http://127.0.0.1:9"]) == 2
    assert "--url and --tenant go together" in capsys.readouterr().err
    assert main(["connect"]) == 2
    assert "no profile yet" in capsys.readouterr().err
    assert main(["connect", "--profile", "nope"]) == 2
    assert main(["connect", "--method", "carrier-pigeon"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_server_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    main(["profile", "add", "p", "--url", "http://127.0.0.1:9", "--tenant", "t"])
    capsys.readouterr()
    assert main(["--retries", "0", "mail", "get-mailbox"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bastion: error: cannot reach 127.0.0.1:9") and len(err.splitlines()) == 1


def test_checkpoint_files(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    saved = checkpoint.Checkpoint(
        path=path, service="mail", command="Get-Mailbox", parameters={"type": "user"},
        page_size=50, issuer="http://127.0.0.1:1/t/x", profile="p", cursor="c1", written=100,
    )  # fmt: skip
    saved.save()
    assert path.stat().st_mode & 0o777 == 0o600 and not list(tmp_path.glob(".*tmp"))
    loaded = checkpoint.load(path)
    assert (loaded.cursor, loaded.written, loaded.parameters) == ("c1", 100, {"type": "user"})
    assert checkpoint.peek_profile(str(path)) == "p"
    path.write_text("{}")
    with pytest.raises(UsageError, match="not a Bastion checkpoint"):
        checkpoint.load(path)
    with pytest.raises(UsageError, match="no checkpoint file"):
        checkpoint.load(tmp_path / "none.json")


def test_resume_commands_never_show_a_proxy_password() -> None:
    words = ["--proxy", "http://u:secret@h:1", "mail", "get-x", "--proxy=http://u:secret@h:1"]
    assert "secret" not in " ".join(redacted(words))

    class Conn:
        profile = "p"

    class Info:
        service, name = "mail", "Get-Mailbox"
        python_name = "get_mailbox"

    args = argparse.Namespace(proxy="http://u:secret@h:1", retries=0, non_interactive=True)
    command = resume_command(Conn(), Info(), args)  # type: ignore[arg-type]
    assert command == [
        "bastion", "--profile", "p", "--retries", "0", "--proxy", "http://u:***@h:1",
        "--non-interactive", "mail", "get-mailbox",
    ]  # fmt: skip


def test_help_imports_no_client_machinery() -> None:
    code = (
        "import sys\n"
        "from bastion.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('httpx', 'cryptography', 'keyring', 'rich', 'prompt_toolkit',\n"
        "         'pydantic', 'sqlalchemy', 'jmespath', 'yaml') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode == 0 and "service commands" in result.stdout
    assert result.stderr.strip() == "[]"
