"""The ``bastion`` command: parse, dispatch, and turn errors into messages and exit codes.

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 sign-in needed, 5 listing incomplete.
Results go to stdout; messages, progress and errors to stderr. Heavy modules are imported
only by the subcommand that needs them, so ``bastion --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bastion import __version__
from bastion.cli import admin, audit, serve
from bastion.errors import BastionError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bastion",
        description="Bastion: administer every service of an organization with MFA-protected "
        "accounts, from terminals, scripts and browsers.",
    )
    parser.add_argument("--version", action="version", version=f"bastion {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.register(commands)
    admin.register(commands)
    audit.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = handler(args)
        return result
    except BastionError as exc:
        print(f"bastion: error: {exc.detail}", file=sys.stderr)
        if exc.hint:
            print(f"  {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bastion: interrupted", file=sys.stderr)
        return 130
