"""The parser of the built-in commands, assembled from both sides.

Each command module registers its nouns and verbs on the parser; the list of built-in
commands is read back from it (:func:`builtin_commands`), so a command added here is known
to the dispatch, to ``did you mean`` and to completion with nothing else to edit. Any other
first word names a service of the tenant (``cli/client_side/services/run.py``).

This module and :mod:`bastion.cli.main` are the only ones that import both the operator
side (``bastion.cli.operator``: opens the database) and the client side
(``bastion.cli.client_side``: talks to a server through ``bastion.client``).
"""

from __future__ import annotations

import argparse

from bastion import __version__
from bastion.cli.client_side import auth_status, completion, connect, profile
from bastion.cli.client_side.shell import loop as shell
from bastion.cli.flags import Parser, add_global_options
from bastion.cli.help_examples import add_examples
from bastion.cli.operator import audit, oauth_client, serve, tenant, user

EPILOG = """\
service commands:
  bastion SERVICE COMMAND [parameters] [options]
                        run a command of a service of the tenant (directory, mail, sites,
                        chat, ...), e.g. bastion mail get-mailbox --identity alice
  bastion SERVICE --help
                        a service's commands, from its catalog

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 sign-in needed, 5 listing incomplete.
"""


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
    # the order of --help
    connect.register_connect(commands)
    auth_status.register(commands)
    connect.register_disconnect(commands)
    profile.register(commands)
    shell.register(commands)
    serve.register(commands)
    tenant.register(commands)
    user.register(commands)
    oauth_client.register(commands)
    audit.register(commands)
    completion.register(commands)
    add_examples(parser)
    return parser


def builtin_commands(parser: Parser | None = None) -> tuple[str, ...]:
    """The built-in commands, as the parser (``build_parser()`` when not given) has them;
    any other first word names a service."""
    return tuple((parser or build_parser()).subcommands)
