"""The ``bastion`` command: parse, dispatch, and turn errors into messages and exit codes.

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 sign-in needed, 5 listing incomplete.
Results go to stdout; messages, progress and errors to stderr, an error as one line saying
what went wrong and what to do, never a traceback. Heavy modules are imported only by the
subcommand that needs them, so ``bastion --help`` stays fast.

A first word that is not one of the built-in commands names a service of the tenant:
``bastion mail get-mailbox --identity alice`` runs the mail service's ``Get-Mailbox``, with a
parser built from the service's catalog (``cli/client_side/services/run.py``). The parser
of the built-in commands, and the list of them, come from ``cli/parser.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from bastion.cli.client_side import completion
from bastion.cli.error_line import one_line
from bastion.cli.flags import positions
from bastion.cli.parser import build_parser, builtin_commands, client_side_commands
from bastion.client.errors import ClientError
from bastion.core.errors import BastionError

__all__ = ["build_parser", "builtin_commands", "main", "one_line", "positions"]


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
    if words[:1] == ["__complete"]:  # what the completion scripts call
        _without_httpx_cli()
        return completion.main(words[1:], build_parser)
    builtin = builtin_commands()
    first, second = positions(words)
    if first is not None and words[first] not in builtin:
        _without_httpx_cli()
        from bastion.cli.client_side.services import run as services

        return services.main(words, first, second, builtin=builtin)
    parser = build_parser()
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command in client_side_commands():
        _without_httpx_cli()
    result: int = handler(args)
    return result
