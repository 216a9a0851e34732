"""Secrets typed by a person or handed over by a script, never on the command line.

A password given as ``--password VALUE`` stays in the shell's history and shows in process
lists (``ps``) while the command runs. So every secret a command takes (a catalog parameter
marked ``writeOnly`` or ``format: password``, an operator command's password) is read, as
``docker login`` and ``gh`` do, from exactly one of:

- ``--NAME-file FILE``: the file's content (one trailing newline dropped);
- ``--NAME-stdin``: one line of stdin;
- ``--NAME`` alone, or a required secret not given: asked for without echo, twice, when
  stdin and stderr are terminals and prompting is allowed; otherwise a usage error that
  says which of the two options to use.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bastion.cli.flags import isatty
from bastion.client.errors import UsageError

#: the value of ``--NAME`` given alone: ask for it
ASK = object()


def may_prompt(*, non_interactive: bool = False) -> bool:
    """A person can be asked: stdin and stderr are terminals, and nobody said not to."""
    if non_interactive or os.environ.get("BASTION_INTERACTIVE", "").strip() == "0":
        return False
    return isatty(sys.stdin) and isatty(sys.stderr)


def refused_on_command_line(flag: str) -> str:
    return (
        f"{flag} takes no value here: a secret on the command line stays in shell history "
        f"and process lists. Give {flag} alone to be asked for it, or {flag}-stdin, or "
        f"{flag}-file FILE"
    )


class SecretAction(argparse.Action):
    """``--password`` alone: ask for it. A value after it is refused without being shown:
    the command line is the one place a secret must not be."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any):
        super().__init__(option_strings, dest, nargs="?", metavar="", **kw)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values is not None:
            flag = option_string or self.option_strings[0]
            raise UsageError(refused_on_command_line(flag.split("=", 1)[0]) + ".")
        setattr(namespace, self.dest, ASK)


def read_secret(
    *,
    flag: str,
    what: str,
    from_stdin: bool = False,
    from_file: str | None = None,
    confirm: bool = True,
    non_interactive: bool = False,
    otherwise: str | None = None,
) -> str:
    """The secret ``flag`` stands for, from its file, stdin or a prompt (see the module);
    ``otherwise`` says what to do where nobody can be asked (the default names
    ``FLAG-stdin`` and ``FLAG-file``)."""
    if from_stdin and from_file is not None:
        raise UsageError(
            f"{flag}-stdin and {flag}-file both give {what}.", hint="Give only one of them."
        )
    if from_file is not None:
        try:
            text = Path(from_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"cannot read {what} from {from_file}: {getattr(exc, 'strerror', None) or exc}.",
                hint=f"{flag}-file names a UTF-8 text file holding only the secret.",
            ) from None
        return _checked(_one_line(text), flag, what, f"{flag}-file")
    if from_stdin:
        return _checked(_one_line(sys.stdin.readline()), flag, what, f"{flag}-stdin")
    if not may_prompt(non_interactive=non_interactive):
        raise UsageError(
            f"{flag} needs {what}, and there is no terminal to ask for it on.",
            hint=otherwise or f"Pipe it in with {flag}-stdin, or give {flag}-file FILE.",
        )
    first = getpass.getpass(f"{what[:1].upper()}{what[1:]}: ")
    if confirm:
        second = getpass.getpass(f"{what[:1].upper()}{what[1:]} (again): ")
        if first != second:
            raise UsageError("the two entries differ; nothing was changed.", hint="Try again.")
    return _checked(first, flag, what, "the prompt")


def _one_line(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def _checked(value: str, flag: str, what: str, where: str) -> str:
    value = value.removesuffix("\r")
    if not value:
        raise UsageError(f"{where} gave an empty {what}.", hint=f"{flag} needs a value.")
    return value
