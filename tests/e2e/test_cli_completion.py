"""``bastion completion bash|zsh|fish``: a script that completes built-in commands, the
tenant's services, their commands, parameters and allowed values, from the catalogs the CLI
keeps on disk. Bash itself is driven here, with the script sourced and the words of a
command line given as bash gives them to a completion function."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import Cli, sign_in
from tests.support.flows import make_tenant
from tests.support.server import ServerProcess


def completed(cli: Cli, line: str) -> list[str]:
    """What bash offers for the last word of ``line`` (empty after a trailing space)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = "\n".join(
        [
            'eval "$(bastion completion bash)"',
            "complete -p bastion",  # the function is registered for the command
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
            f"COMP_CWORD={len(words) - 1}",
            "_bastion_complete",
            "printf '%s\\n' \"${COMPREPLY[@]}\"",
        ]
    )
    bin_dir = str(Path(sys.executable).parent)
    env = {**cli.env(), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("complete -o default -F _bastion_complete bastion")
    return [word for word in lines[1:] if word]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_services_commands_flags_and_values(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(server)
    cli = sign_in(t, tmp_path / "config")
    cli.ok("mail", "get-mailbox", "--first", "1")  # the mail catalog is now on disk
    assert "mail" in completed(cli, "bastion ma")
    assert "profile" in completed(cli, "bastion pro")
    assert completed(cli, "bastion mail get-mailbox-s") == ["get-mailbox-statistics"]
    assert {"get-mailbox", "set-mailbox", "new-mailbox"} <= set(completed(cli, "bastion mail "))
    assert completed(cli, "bastion mail get-mailbox --lit") == ["--litigation-hold"]
    assert completed(cli, "bastion mail get-mailbox --fir") == ["--first"]
    assert completed(cli, "bastion mail get-mailbox --type ") == ["room", "shared", "user"]
    assert completed(cli, "bastion mail get-mailbox -o ") == [
        "csv", "json", "jsonl", "table", "yaml",
    ]  # fmt: skip
    assert completed(cli, "bastion connect --method b") == ["browser"]
    assert completed(cli, "bastion profile u") == ["use"]
    # a service whose catalog was never fetched offers nothing, and sends nothing
    assert completed(cli, "bastion sites get-s") == []


def test_a_script_for_each_shell() -> None:
    for shell in ("bash", "zsh", "fish"):
        result = subprocess.run(
            [sys.executable, "-m", "bastion", "completion", shell],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0 and "bastion __complete" in result.stdout
    bash = subprocess.run(
        [sys.executable, "-m", "bastion", "completion", "bash"], capture_output=True, text=True
    ).stdout
    if shutil.which("bash"):
        syntax = subprocess.run(["bash", "-n"], input=bash, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr
    wrong = subprocess.run(
        [sys.executable, "-m", "bastion", "completion", "tcsh"], capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
