"""TAB completion in the shell, from the catalogs: command names, parameter names, and
allowed values (enums, booleans, ``-ResultSize Unlimited``), in both forms of command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.completion import Completer as BaseCompleter
from prompt_toolkit.document import Document

from bastion.cli.client_side.services.arguments import command_parser
from bastion.cli.client_side.services.params import (
    Param,
    find_param,
    first_sentence,
    kebab_command,
    params_of,
)

if TYPE_CHECKING:
    from bastion.client.catalog import Catalog, CommandInfo

BUILTINS = ("help", "exit", "quit")


class Shell(Protocol):
    """What completion reads of the shell it completes for (``shell.loop.Shell``)."""

    services: list[str]
    catalogs: dict[str, Catalog]
    commands: dict[str, CommandInfo]


def split(text: str) -> list[str]:
    """Words as typed so far; an unclosed quote is part of the last word."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    if not text or (text[-1].isspace() and quote is None):
        words.append("")
    return words


def _matching(prefix: str, names: Iterable[tuple[str, str]]) -> Iterator[Completion]:
    low = prefix.lower()
    for name, meta in names:
        if name.lower().startswith(low):
            yield Completion(name, start_position=-len(prefix), display_meta=meta)


def _values(param: Param, *, pwsh: bool) -> list[tuple[str, str]]:
    if param.choices:
        return [(str(c), "") for c in param.choices]
    if param.kind == "boolean":
        return [("$true", ""), ("$false", "")] if pwsh else [("true", ""), ("false", "")]
    return []


class Completer(BaseCompleter):
    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        words = split(document.text_before_cursor)
        current, before = words[-1], words[:-1]
        if not before:
            yield from _matching(current, self._first_words())
            return
        first = before[0]
        if first in self.shell.services:
            yield from self._cli(first, before[1:], current)
            return
        info = self.shell.commands.get(first.replace("-", "").replace("_", "").lower())
        if info is not None:
            yield from self._pwsh(info, before[1:], current)

    def _first_words(self) -> Iterator[tuple[str, str]]:
        for info in sorted(self.shell.commands.values(), key=lambda i: i.name):
            yield info.name, first_sentence(info.help)
        for service in self.shell.services:
            yield service, f"the {service} service (CLI form)"
        for word in BUILTINS:
            yield word, ""

    def _pwsh(self, info: CommandInfo, before: list[str], current: str) -> Iterator[Completion]:
        params = params_of(info)
        if current.startswith("-"):
            found = (find_param(params, w) for w in before if w.startswith("-"))
            used = {p.name for p in found if p is not None}
            names = [("-" + p.pwsh, p.description) for p in params if p.name not in used]
            if info.lists:
                names.append(("-ResultSize", "how many to list: a number or Unlimited"))
            yield from _matching(current, names)
            return
        previous = before[-1] if before else ""
        if not previous.startswith("-"):
            return
        if previous.lower() == "-resultsize" and info.lists:
            yield from _matching(current, [("Unlimited", "every one")])
            return
        param = find_param(params, previous)
        if param is not None:
            yield from _matching(current, _values(param, pwsh=True))

    def _cli(self, service: str, before: list[str], current: str) -> Iterator[Completion]:
        catalog = self.shell.catalogs[service]
        if not before:
            names = [(kebab_command(i), first_sentence(i.help)) for i in catalog.commands.values()]
            yield from _matching(current, sorted(names))
            return
        info = next(
            (i for i in catalog.commands.values() if kebab_command(i) == before[0].lower()), None
        )
        if info is None:
            return
        params = params_of(info)
        if current.startswith("-"):
            parser, _ = command_parser(info, prog=service)
            flags = [
                (flag, (action.help or "").split(" (")[0])
                for action in parser._actions
                for flag in action.option_strings
                if flag.startswith("--") and flag not in before
            ]
            yield from _matching(current, flags)
            return
        previous = before[-1]
        param = next((p for p in params if previous in (p.flag, p.negative_flag)), None)
        if param is not None:
            yield from _matching(current, _values(param, pwsh=False))
        elif previous in ("-o", "--output"):
            from bastion.cli.flags import FORMATS

            yield from _matching(current, [(f, "") for f in FORMATS])
