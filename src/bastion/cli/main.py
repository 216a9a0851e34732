"""The ``bastion`` command: parse, dispatch, and turn errors into messages and exit codes.

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 sign-in needed, 5 listing incomplete.
Results go to stdout; messages, progress and errors to stderr, an error as one line saying
what went wrong and what to do, never a traceback. Heavy modules are imported only by the
subcommand that needs them, so ``bastion --help`` stays fast.

A first word that is not one of the built-in commands names a service of the tenant:
``bastion mail get-mailbox --identity alice`` runs the mail service's ``Get-Mailbox``, with a
parser built from the service's catalog (``cli/services.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bastion import __version__
from bastion.cli import admin, audit, client, complete, examples, serve, shell
from bastion.cli.options import VALUE_OPTIONS, Parser, add_global_options
from bastion.client.errors import ClientError
from bastion.errors import BastionError

#: the built-in commands; any other first word names a service
BUILTIN = (
    "serve",
    "demo",
    "tenant",
    "user",
    "client",
    "audit",
    "connect",
    "disconnect",
    "auth",
    "profile",
    "shell",
    "completion",
)

EPILOG = """\
service commands:
  bastion SERVICE COMMAND [parameters] [options]
                        run a command of a service of the tenant (directory, mail, sites,
                        chat, ...), e.g. bastion mail get-mailbox --identity alice
  bastion SERVICE --help
                        a service's commands, from its catalog

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 sign-in needed, 5 listing incomplete.
"""


def build_parser() -> argparse.ArgumentParser:
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
    client.register(commands)
    shell.register(commands)
    serve.register(commands)
    admin.register(commands)
    audit.register(commands)
    complete.register(commands)
    examples.add_examples(parser)
    return parser


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


def _without_httpx_cli() -> None:
    """``import httpx`` also loads its command-line client (click, rich, pygments: a third
    of its import time) unless that is unavailable; it is never used here."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(words)
    except (BastionError, ClientError) as exc:
        print(f"bastion: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bastion: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (| head): say nothing more, to nobody
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except EOFError:
        print(
            "bastion: error: a question could not be answered: stdin is closed. Sign in where "
            "you can type, or with the device code (bastion connect --method device).",
            file=sys.stderr,
        )
        return 4
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"bastion: error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("BASTION_DEBUG"):
            raise
        print(
            f"bastion: error: unexpected {type(exc).__name__}: {exc}. This is a bug: run again "
            "with BASTION_DEBUG=1 for the details and report them.",
            file=sys.stderr,
        )
        return 1


def _dispatch(words: list[str]) -> int:
    if words[:1] == ["__complete"]:  # what the completion scripts call (cli/complete.py)
        _without_httpx_cli()
        return complete.main(words[1:])
    first, second = positions(words)
    if first is not None and words[first] not in BUILTIN:
        _without_httpx_cli()
        from bastion.cli import services

        return services.main(words, first, second)
    parser = build_parser()
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command in ("connect", "disconnect", "auth", "profile", "shell"):
        _without_httpx_cli()
    result: int = handler(args)
    return result


def one_line(exc: BastionError | ClientError) -> str:
    """What went wrong and what to do, on one line."""
    text = exc.for_cli() if isinstance(exc, ClientError) else f"{exc.detail} {exc.hint or ''}"
    return " ".join(text.split())
