"""Shell completion for the ``bastion`` command: ``bastion completion bash|zsh|fish``.

The scripts are small and call back into ``bastion __complete WORDS... CURRENT``, which
prints the words that may follow, one per line: the built-in commands and their options
(from the argument parser), the tenant's services, their commands, parameters and allowed
values (from the catalogs on disk, as the shell's completer reads them: no request is sent,
and nothing is offered for a service whose catalog was never fetched). Completion is
therefore always as current as the catalogs, with no script to regenerate.

Completion never fails loudly: whatever goes wrong, it offers nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from bastion.cli.flags import Parser, positions

SHELLS = ("bash", "zsh", "fish")

BASH = r"""# bastion completion for bash: eval "$(bastion completion bash)"
_bastion_complete() {
    local IFS=$'\n'
    local words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
    COMPREPLY=($(bastion __complete "${words[@]}" "${COMP_WORDS[COMP_CWORD]}" 2>/dev/null))
}
complete -o default -F _bastion_complete bastion
"""

ZSH = r"""#compdef bastion
# bastion completion for zsh: eval "$(bastion completion zsh)"
_bastion() {
    local -a found
    found=(${(f)"$(bastion __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" \
        2>/dev/null)"})
    compadd -a found
}
compdef _bastion bastion
"""

FISH = r"""# bastion completion for fish: bastion completion fish | source
function __bastion_complete
    set -l words (commandline -opc)
    bastion __complete $words[2..-1] (commandline -ct) 2>/dev/null
end
complete -c bastion -f -a '(__bastion_complete)'
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description="Print a completion script for your shell. bash: "
        'eval "$(bastion completion bash)" in ~/.bashrc; zsh: eval "$(bastion completion '
        'zsh)" in ~/.zshrc (after compinit); fish: bastion completion fish > '
        "~/.config/fish/completions/bastion.fish. Service commands, their parameters and "
        "values come from the catalogs the CLI keeps on disk.",
    )
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(handler=lambda args: run_script(ScriptOptions(args.shell)))


@dataclass(frozen=True)
class ScriptOptions:
    shell: str
    out: TextIO = field(default_factory=lambda: sys.stdout)


def run_script(options: ScriptOptions) -> int:
    """``bastion completion SHELL``: the script to load in that shell."""
    options.out.write({"bash": BASH, "zsh": ZSH, "fish": FISH}[options.shell])
    return 0


def main(words: list[str], build_parser: Callable[[], Parser]) -> int:
    """``bastion __complete WORDS... CURRENT``: the candidates, one per line. The parser of
    the built-in commands comes from the entry point, which knows both sides."""
    if not words:
        return 0
    *before, current = words
    try:
        found = candidates(before, current, build_parser())
    except Exception:  # a completion offers nothing rather than an error
        found = []
    sys.stdout.write("".join(f"{word}\n" for word in found))
    return 0


def candidates(before: list[str], current: str, parser: Parser) -> list[str]:
    first, second = positions(before)
    builtin = list(parser.subcommands)
    if first is None:
        if current.startswith("-"):
            return _matching(current, _flags(parser))
        return _matching(current, [*builtin, *_services(before)])
    if before[first] in builtin:
        return _builtin(parser, before[first:], current)
    if second is None:
        return _matching(current, _commands(before, before[first]))
    return _service_command(before, before[first], before[second], current)


def _matching(current: str, words: Iterable[str]) -> list[str]:
    return sorted({w for w in words if w.startswith(current) and not w.startswith("__")})


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [
        flag
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
        if flag.startswith("--")
    ]


def _values(parser: argparse.ArgumentParser, previous: str) -> list[str] | None:
    """The allowed values of the option ``previous``, if it takes one of a few."""
    for action in parser._actions:
        if previous in action.option_strings and action.choices:
            return [str(c) for c in action.choices]
    return None


def _builtin(parser: argparse.ArgumentParser, words: list[str], current: str) -> list[str]:
    """A built-in command: its actions (``profile use``), options and their values."""
    for word in words:
        sub = _subparsers(parser)
        if sub is None or word not in sub:
            continue
        parser = sub[word]
    values = _values(parser, words[-1]) if words else None
    if values is not None:
        return _matching(current, values)
    if current.startswith("-"):
        return _matching(current, _flags(parser))
    sub = _subparsers(parser)
    return _matching(current, sub) if sub is not None else []


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, Parser] | None:
    return (parser.subcommands or None) if isinstance(parser, Parser) else None


def _connection(before: list[str]) -> Any:
    """A connection of the profile the words name (or the current one), never signed in."""
    from bastion.cli.client_side.open_connection import open_connection
    from bastion.cli.client_side.services.run import _early
    from bastion.cli.flags import opt

    early = _early(before)
    return open_connection(early, profile=opt(early, "profile"))


def _on_disk(conn: Any) -> Any:
    """The document cache, from disk only, whatever its age: completion sends nothing."""
    from bastion.cli.client_side.services import cached_catalogs as cached

    return cached._OnDisk(conn, float("inf"))


def _known_services(conn: Any) -> dict[str, str]:
    from bastion.client import discovery as discoveries

    with contextlib.suppress(Exception):
        return discoveries.load(None, _on_disk(conn), conn.issuer).services  # type: ignore[arg-type]
    return {}


def _services(before: list[str]) -> list[str]:
    with contextlib.suppress(Exception):
        conn = _connection(before)
        try:
            return sorted(_known_services(conn))
        finally:
            conn.close()
    return []


def _catalog(before: list[str], service: str) -> Any:
    from bastion.client import catalog as catalogs

    conn = _connection(before)
    try:
        base = _known_services(conn).get(service)
        if base is None:
            return None
        with contextlib.suppress(Exception):
            return catalogs.load(None, _on_disk(conn), service, base)  # type: ignore[arg-type]
        return None
    finally:
        conn.close()


def _commands(before: list[str], service: str) -> list[str]:
    from bastion.cli.client_side.services.params import kebab_command

    catalog = _catalog(before, service)
    if catalog is None:
        return []
    return [kebab_command(info) for info in catalog.commands.values()]


def _service_command(before: list[str], service: str, command: str, current: str) -> list[str]:
    from bastion.cli.client_side.services.arguments import command_parser
    from bastion.cli.client_side.services.params import kebab_command, normalize

    catalog = _catalog(before, service)
    if catalog is None:
        return []
    info = next(
        (i for i in catalog.commands.values() if normalize(i.name) == normalize(command)), None
    )
    if info is None:
        return []
    parser, params = command_parser(info, prog=f"bastion {service} {kebab_command(info)}")
    previous = before[-1] if before else ""
    for p in params:
        if previous in (p.flag,) and p.kind != "boolean":
            return _matching(current, [str(c) for c in p.choices or ()])
        if previous == p.flag and p.kind == "boolean" and not current.startswith("-"):
            return _matching(current, ["true", "false"])
    values = _values(parser, previous)
    if values is not None:
        return _matching(current, values)
    if current.startswith("-"):
        used = set(before)
        return _matching(current, [f for f in _flags(parser) if f not in used])
    return []
