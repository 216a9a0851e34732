"""Argument parsers for service commands, built from the catalog entries.

Every parameter of a command becomes a ``--kebab-case`` option typed from its JSON Schema:

- strings, integers and numbers are checked (bounds, lengths, ISO 8601 times);
- allowed values (``enum``) are choices, matched in any case;
- booleans are ``--flag`` / ``--no-flag``, or ``--flag true|false``;
- arrays are repeatable, comma-separated, or a JSON list (``'["a,b", "c"]'``);
- ``--no-NAME`` sends null to a parameter that may be null.

A parameter whose name the CLI itself uses (``--output``, ``--profile`` ...) is
``--param-NAME``. Listing commands add ``--page-size``, ``--first``, ``--cursor``, ``--all``,
``--checkpoint`` and ``--resume``; every command has the output and global options.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bastion.cli.client_side.services.params import Param, first_sentence, kebab_command, params_of
from bastion.cli.flags import Parser, add_global_options, add_output_options, whole_number

if TYPE_CHECKING:
    from bastion.client.catalog import Catalog, CommandInfo

#: the value of ``--no-NAME`` for a parameter that may be null
NULL = object()


def dest(param: Param) -> str:
    return f"param__{param.name}"


class ValueAction(argparse.Action):
    """One typed value (a list for arrays, extended by each repetition)."""

    def __init__(self, option_strings: Sequence[str], dest: str, param: Param, **kw: Any):
        super().__init__(option_strings, dest, **kw)
        self.param = param

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        try:
            value = self.param.convert(str(values))
        except ValueError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        if self.param.kind == "array":
            before = getattr(namespace, self.dest, None)
            value = (before if isinstance(before, list) else []) + value
        setattr(namespace, self.dest, value)


class BoolAction(argparse.Action):
    """``--flag``, ``--flag true|false`` and ``--no-flag``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any):
        super().__init__(option_strings, dest, nargs="?", metavar="true|false", **kw)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from bastion.cli.client_side.services.params import parse_bool

        negative = bool(option_string and option_string.startswith("--no-"))
        if values is None:
            setattr(namespace, self.dest, not negative)
            return
        if negative:
            raise argparse.ArgumentError(self, "takes no value")
        try:
            setattr(namespace, self.dest, parse_bool(str(values)))
        except ValueError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None


class HelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        width = min(100, shutil.get_terminal_size().columns)
        super().__init__(prog, max_help_position=32, width=width)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, BoolAction):
            yes, no = action.option_strings
            return f"{yes} [true|false], {no}"
        return super()._format_action_invocation(action)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # an option's name (--no-policy) is never cut at its hyphens
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # keep the catalog's paragraphs; wrap each
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
        return "\n\n".join(
            textwrap.fill(
                p, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
            )
            for p in paragraphs
            if p
        )


def command_parser(info: CommandInfo, *, prog: str) -> tuple[Parser, list[Param]]:
    """The parser of one command, and its parameters."""
    params = params_of(info)
    notes = []
    if info.lists:
        notes.append(
            "A listing: lists every object, page by page; --first N stops after N (and "
            "says so on stderr)."
        )
    if info.sensitive:
        notes.append("Sensitive: it needs a recent second factor, which you may be asked for.")
    notes.append(f"Command {info.name} of the {info.service} service.")
    parser = Parser(
        prog=prog,
        description=info.help,
        epilog="\n\n".join(notes),
        formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    group = parser.add_argument_group("parameters")
    for p in params:
        if p.secret:
            _add_secret(group, p)
            continue
        if p.kind == "boolean":
            flags = [p.flag, p.negative_flag or "--no-" + p.flag[2:]]
            group.add_argument(
                *flags,
                action=BoolAction,
                dest=dest(p),
                default=argparse.SUPPRESS,
                help=p.help_text(),
            )
            continue
        group.add_argument(
            p.flag,
            action=ValueAction,
            param=p,
            dest=dest(p),
            metavar=p.metavar(),
            default=argparse.SUPPRESS,
            help=p.help_text(),
        )
        if p.negative_flag:
            group.add_argument(
                p.negative_flag,
                action="store_const",
                const=NULL,
                dest=dest(p),
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
    if info.lists:
        listing = parser.add_argument_group("listing")
        listing.add_argument(
            "--page-size",
            type=whole_number(1, 1000),
            metavar="N",
            default=argparse.SUPPRESS,
            help="objects per page, 1 to 1000 (default 100)",
        )
        listing.add_argument(
            "--first",
            type=whole_number(1, 10**9),
            metavar="N",
            default=argparse.SUPPRESS,
            help="only the first N objects (stderr says when there are more)",
        )
        listing.add_argument(
            "--cursor",
            metavar="CURSOR",
            default=argparse.SUPPRESS,
            help="start from this cursor (printed when a listing has more, or stops)",
        )
        listing.add_argument(
            "--all",
            action="store_true",
            default=argparse.SUPPRESS,
            help="every object: what a listing does anyway (kept for older scripts)",
        )
        listing.add_argument(
            "--checkpoint",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help="implies --all: after each page, save in FILE how far the listing got",
        )
        listing.add_argument(
            "--resume",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help="continue the listing saved in FILE by --checkpoint, with its parameters",
        )
    add_output_options(parser)
    add_global_options(parser)
    return parser, params


def _add_secret(group: Any, p: Param) -> None:
    from bastion.cli.secret_input import SecretAction

    group.add_argument(
        p.flag, action=SecretAction, dest=dest(p), default=argparse.SUPPRESS, help=p.help_text()
    )
    group.add_argument(
        p.flag + "-stdin",
        action="store_true",
        dest=f"stdin__{p.name}",
        default=argparse.SUPPRESS,
        help=f"read {p.flag[2:]} from one line of stdin",
    )
    group.add_argument(
        p.flag + "-file",
        metavar="FILE",
        dest=f"file__{p.name}",
        default=argparse.SUPPRESS,
        help=f"read {p.flag[2:]} from FILE",
    )


def values_of(args: argparse.Namespace, params: list[Param]) -> dict[str, Any]:
    """The parameters given, as JSON values by their catalog names; secrets are read from
    where they were given (a prompt, stdin or a file)."""
    from bastion.cli.flags import opt

    found: dict[str, Any] = {}
    for p in params:
        if p.secret:
            stdin, file = opt(args, f"stdin__{p.name}", False), opt(args, f"file__{p.name}")
            if hasattr(args, dest(p)) or stdin or file is not None:
                from bastion.cli.secret_input import read_secret

                found[p.name] = read_secret(
                    flag=p.flag,
                    what=(p.description.rstrip(".") or p.name).lower(),
                    from_stdin=stdin,
                    from_file=file,
                    non_interactive=bool(opt(args, "non_interactive", False)),
                )
            continue
        if hasattr(args, dest(p)):
            value = getattr(args, dest(p))
            found[p.name] = None if value is NULL else value
    return found


def missing(params: list[Param], given: dict[str, Any]) -> list[Param]:
    return [p for p in params if p.required and p.name not in given]


def service_help(catalog: Catalog, *, prog: str, where: str) -> str:
    """``bastion mail --help``: the service's commands with their one-line help."""
    width = min(100, shutil.get_terminal_size().columns)
    infos = sorted(catalog.commands.values(), key=lambda i: (i.name.split("-", 1)[1], i.name))
    names = [kebab_command(i) for i in infos]
    column = min(30, max((len(n) for n in names), default=0) + 2)
    lines = [
        f"usage: {prog} COMMAND [parameters] [options]",
        "",
        f"The commands of the {catalog.service} service of {where}.",
        "",
        "commands:",
    ]
    for name, info in zip(names, infos, strict=True):
        text = first_sentence(info.help)
        if info.sensitive:
            text += " [sensitive]"
        wrapped = textwrap.wrap(text, max(20, width - column - 2)) or [""]
        if len(name) + 2 > column:
            lines.append(f"  {name}")
            lines.extend(" " * (column + 2) + w for w in wrapped)
        else:
            lines.append(f"  {name.ljust(column)}{wrapped[0]}")
            lines.extend(" " * (column + 2) + w for w in wrapped[1:])
    lines += [
        "",
        f"Run '{prog} COMMAND --help' for a command's parameters. Commands may also be "
        "named as in PowerShell (Get-Mailbox).",
    ]
    return "\n".join(lines) + "\n"
