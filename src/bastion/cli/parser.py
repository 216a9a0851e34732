"""The parser of the built-in commands, assembled from both sides.

:data:`COMMANDS` is the one list of built-in commands: each is a name and the function that
registers it (its verbs, flags and handler) on the parser. The parser is built from it,
checks that each function registered the command it is listed under, and the dispatch
reads the names from it without building the parser (building every command's parser costs
more than the rest of a service command's start-up). Any other first word names a service
of the tenant (``cli/client_side/services/run.py``).

This module and :mod:`bastion.cli.main` are the only ones that import both the operator
side (``bastion.cli.operator``: opens the database) and the client side
(``bastion.cli.client_side``: talks to a server through ``bastion.client``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bastion import __version__
from bastion.cli.client_side import auth_status, completion, connect, profile
from bastion.cli.client_side.shell import loop as shell
from bastion.cli.flags import Parser, add_global_options
from bastion.cli.help_examples import add_examples
from bastion.cli.operator import audit, demo, oauth_client, serve, tenant, user

EPILOG = """\
service commands:
  bastion SERVICE COMMAND [parameters] [options]
                        run a command of a service of the tenant (directory, mail, sites,
                        chat, ...), e.g. bastion mail get-mailbox --identity alice
  bastion SERVICE --help
                        a service's commands, from its catalog

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 sign-in needed, 5 listing incomplete.
"""


#: the built-in commands in the order of ``--help``: a name, and what registers it
COMMANDS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("connect", connect.register_connect),
    ("auth", auth_status.register),
    ("disconnect", connect.register_disconnect),
    ("profile", profile.register),
    ("shell", shell.register),
    ("serve", serve.register),
    ("demo", demo.register),
    ("tenant", tenant.register),
    ("user", user.register),
    ("client", oauth_client.register),
    ("audit", audit.register),
    ("completion", completion.register),
)


def build_parser() -> Parser:
    parser = Parser(
        prog="bastion",
        description="Bastion: administer every service of an organization with MFA-protected\n"
        "accounts, from terminals, scripts and browsers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bastion {__version__}")
    add_global_options(parser, title="global options (client commands)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    expected: list[str] = []
    for name, register in COMMANDS:
        register(commands)
        expected.append(name)
        if list(parser.subcommands) != expected:  # the list and the parser never disagree
            raise RuntimeError(f"{register.__module__} does not register '{name}' alone")
    add_examples(parser)
    return parser


def builtin_commands(parser: Parser | None = None) -> tuple[str, ...]:
    """The built-in commands: those of ``parser`` when given, else those of
    :data:`COMMANDS` (what :func:`build_parser` registers), without building a parser."""
    if parser is not None:
        return tuple(parser.subcommands)
    return tuple(name for name, _ in COMMANDS)


def client_side_commands() -> tuple[str, ...]:
    """The built-in commands of the client side (which may load httpx)."""
    side = "bastion.cli.client_side."
    return tuple(name for name, register in COMMANDS if register.__module__.startswith(side))
