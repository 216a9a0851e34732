"""The argument parser of the client commands, and the options they share.

Global options (``--profile``, ``--non-interactive`` and the session options ``--proxy``,
``--timeout``, ``--ca-bundle``, ``--retries``) and output options (``--output``,
``--query``, ``--property``) are accepted by every client command, before or after the
command's name. Their defaults are ``SUPPRESS``: a subcommand's parser must not overwrite
a value given before the subcommand's name, so they are read with :func:`opt`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from bastion.client.errors import UsageError

FORMATS = ("table", "json", "jsonl", "csv", "yaml")

#: options of the CLI itself that take a value (the service commands' pre-scan needs them)
VALUE_OPTIONS = frozenset(
    {
        "--profile",
        "--proxy",
        "--timeout",
        "--ca-bundle",
        "--retries",
        "-o",
        "--output",
        "--query",
        "--property",
        "--page-size",
        "--first",
        "--cursor",
        "--checkpoint",
        "--resume",
    }
)
#: every option name of the CLI itself: a catalog parameter with one of these names is
#: given as ``--param-NAME`` instead
RESERVED = VALUE_OPTIONS | {"--non-interactive", "--all", "--help", "-h"}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a :class:`UsageError` (exit 2), so
    the shell can parse a line without leaving."""

    def error(self, message: str) -> NoReturn:
        text = message.rstrip(".")
        hint = f"Run '{self.prog} --help' for usage."
        suggestion = self._did_you_mean(text)
        if suggestion:
            hint = f"Did you mean '{suggestion}'? {hint}"
        raise UsageError(f"{text}.", hint=hint)

    def add_subparsers(self, **kwargs: Any) -> Any:
        """Also keeps the group, so that :attr:`subcommands` can say what it holds."""
        group = super().add_subparsers(**kwargs)
        self._subcommand_group: argparse._SubParsersAction[Parser] | None = group
        return group

    @property
    def subcommands(self) -> dict[str, Parser]:
        """The commands under this one by name, in the order they were added; empty for a
        command that runs something. (Subparsers are of this class: argparse makes them
        with the class of their parent.)"""
        group = getattr(self, "_subcommand_group", None)
        return dict(group.choices) if group is not None else {}

    def _did_you_mean(self, message: str) -> str | None:
        """The option closest to the first unknown one named in ``message``, if any is
        close: argparse reports ``unrecognized arguments: --identit alice``."""
        import difflib
        import re

        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            close = difflib.get_close_matches(choice.group(1), options, n=1, cutoff=0.6)
            return close[0] if close else None
        if not message.startswith("unrecognized arguments:"):
            return None
        words = message.split(":", 1)[1].split()
        unknown = next((w.split("=", 1)[0] for w in words if w.startswith("--")), None)
        if unknown is None:
            return None
        close = difflib.get_close_matches(unknown, sorted(_option_strings(self)), n=1, cutoff=0.7)
        return close[0] if close else None


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--option`` of ``parser`` and of its subcommands (the unknown option may be
    any subcommand's: argparse reports the leftovers from the top)."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def positions(words: Sequence[str]) -> tuple[int | None, int | None]:
    """Where the first two words that are not options are (the command, or a service and
    its command), skipping the values of the CLI's own options."""
    found: list[int] = []
    i = 0
    while i < len(words) and len(found) < 2:
        word = words[i]
        if word == "--":
            break
        if word.startswith("-") and word != "-":
            if word in VALUE_OPTIONS:
                i += 1
        else:
            found.append(i)
        i += 1
    found += [None, None]  # type: ignore[list-item]
    return found[0], found[1]


def opt(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("give a positive number of seconds")
    return value


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"give a whole number from {low:,} to {high:,}")
        return value

    return convert


def add_global_options(parser: argparse.ArgumentParser, *, title: str = "global options") -> None:
    group = parser.add_argument_group(title)
    group.add_argument(
        "--profile",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="the profile to use (default: $BASTION_PROFILE, else the current profile)",
    )
    group.add_argument(
        "--non-interactive",
        action="store_true",
        default=argparse.SUPPRESS,
        help="never prompt: when a sign-in is needed, stop with exit code 4 "
        "(also BASTION_INTERACTIVE=0)",
    )
    add_session_options(group)


def add_session_options(group: Any) -> None:
    group.add_argument(
        "--proxy",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="HTTP(S) proxy for every request, sign-in included "
        "(http://user:password@host:port; default: the profile's, else HTTPS_PROXY)",
    )
    group.add_argument(
        "--timeout",
        type=_positive,
        metavar="SECONDS",
        default=argparse.SUPPRESS,
        help="timeout of each request (default: the profile's, else 30)",
    )
    group.add_argument(
        "--ca-bundle",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="PEM file of the CA certificates to trust (default: the profile's, else the system's)",
    )
    group.add_argument(
        "--retries",
        type=whole_number(0, 10),
        metavar="N",
        default=argparse.SUPPRESS,
        help="retries of a request that could not reach the server (default: the "
        "profile's, else 3)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="format of the results on stdout (default: table on a terminal, else json)",
    )
    group.add_argument(
        "--query",
        metavar="JMESPATH",
        default=argparse.SUPPRESS,
        help="a JMESPath expression applied to the whole result (https://jmespath.org)",
    )
    group.add_argument(
        "--property",
        metavar="NAMES",
        action="append",
        default=argparse.SUPPRESS,
        help="only these properties (comma-separated or repeated; any case; * wildcards)",
    )


def session_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The session options given, as ``connect()`` takes them."""
    return {
        "profile": opt(args, "profile"),
        "proxy": opt(args, "proxy"),
        "timeout": opt(args, "timeout"),
        "ca_bundle": opt(args, "ca_bundle"),
        "retries": opt(args, "retries"),
    }


@dataclass(frozen=True)
class SessionFlags:
    """The global options of a client command, parsed: which profile, how to reach the
    server, and whether anyone may be asked anything."""

    profile: str | None = None
    proxy: str | None = None
    timeout: float | None = None
    ca_bundle: str | None = None
    retries: int | None = None
    non_interactive: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SessionFlags:
        return cls(**session_kwargs(args), non_interactive=bool(opt(args, "non_interactive")))

    def kwargs(self) -> dict[str, Any]:
        """As ``connect()`` takes them."""
        return {
            "profile": self.profile,
            "proxy": self.proxy,
            "timeout": self.timeout,
            "ca_bundle": self.ca_bundle,
            "retries": self.retries,
        }

    @property
    def interactive(self) -> bool | None:
        return False if self.non_interactive else None


def interactive(args: argparse.Namespace) -> bool | None:
    return False if opt(args, "non_interactive", False) else None


def properties(args: argparse.Namespace) -> list[str] | None:
    given: Sequence[str] | None = opt(args, "property")
    if not given:
        return None
    names = [p.strip() for value in given for p in value.split(",") if p.strip()]
    return names or None


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def default_format() -> str:
    return "table" if isatty(sys.stdout) else "json"
