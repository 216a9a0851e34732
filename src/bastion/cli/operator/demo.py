"""``bastion demo``: the demo tenant ``contoso`` with its people, mailboxes, sites and chat
policies, served on a loopback address (or only created, with ``--setup-only``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bastion.cli.flags import whole_number
from bastion.cli.operator.serve import add_server_options, is_loopback, run_server
from bastion.cli.operator.storage import settings_from
from bastion.errors import UsageError


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="create the demo tenant 'contoso' and serve it on 127.0.0.1:8700"
    )
    add_server_options(demo, default_port=8700)
    demo.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a local CA made in the data directory"
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object describing the demo as the first stdout line",
    )
    demo.add_argument(
        "--setup-only", action="store_true", help="create the demo data and exit without serving"
    )
    demo.add_argument(
        "--mailboxes",
        type=_count,
        default=2000,
        metavar="N",
        help="people with mailboxes, sites and chat policies to seed (default 2000; "
        "a run adds only those missing)",
    )
    demo.set_defaults(handler=_demo)


def _count(text: str) -> int:
    """A whole number of people, written ``2000``, ``2,000`` or ``2_000``."""
    return whole_number(0, 10_000_000)(text.replace(",", ""))


def _demo(args: argparse.Namespace) -> int:
    from bastion import data_files
    from bastion.config import default_data_dir
    from bastion.demo import run_demo

    data_files.restrict_umask()  # before the demo writes its data directory

    if args.data_dir is None:
        args.data_dir = default_data_dir() / "demo"
    settings = settings_from(args, clock_offset_file=args.clock_offset_file)
    if not is_loopback(args.host):
        raise UsageError("the demo serves only on a loopback address.")
    listen = run_demo(
        settings,
        host=args.host,
        port=args.port,
        tls=args.tls,
        as_json=args.json,
        out=sys.stdout,
        err=sys.stderr,
        mailboxes=args.mailboxes,
    )
    if args.setup_only:
        return 0
    return run_server(settings, listen)
