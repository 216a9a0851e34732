"""``bastion demo``: the demo tenant ``contoso`` with its people, mailboxes, sites and chat
policies, served on a loopback address (or only created, with ``--setup-only``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from bastion.cli.flags import whole_number
from bastion.cli.operator.serve import add_server_options
from bastion.cli.operator.storage import StorageFlags
from bastion.core.config import is_loopback_host
from bastion.core.errors import UsageError
from bastion.server.serving import run_server


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
    demo.set_defaults(handler=lambda args: run(DemoOptions.from_args(args)))


def _count(text: str) -> int:
    """A whole number of people, written ``2000``, ``2,000`` or ``2_000``."""
    return whole_number(0, 10_000_000)(text.replace(",", ""))


@dataclass(frozen=True)
class DemoOptions:
    host: str
    port: int
    tls: bool
    as_json: bool
    setup_only: bool
    mailboxes: int
    clock_offset_file: Path | None
    storage: StorageFlags  # no data directory: the default's "demo" directory
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoOptions:
        return cls(
            host=args.host,
            port=args.port,
            tls=args.tls,
            as_json=args.json,
            setup_only=args.setup_only,
            mailboxes=args.mailboxes,
            clock_offset_file=args.clock_offset_file,
            storage=StorageFlags.from_args(args),
        )


def run(options: DemoOptions) -> int:
    from bastion.core import data_files
    from bastion.core.config import default_data_dir
    from bastion.server.demo_tenant import run_demo

    data_files.restrict_umask()  # before the demo writes its data directory

    storage = options.storage
    if storage.data_dir is None:
        storage = replace(storage, data_dir=default_data_dir() / "demo")
    settings = storage.settings(clock_offset_file=options.clock_offset_file)
    if not is_loopback_host(options.host):
        raise UsageError("the demo serves only on a loopback address.")
    listen = run_demo(
        settings,
        host=options.host,
        port=options.port,
        tls=options.tls,
        as_json=options.as_json,
        out=options.out,
        err=options.err,
        mailboxes=options.mailboxes,
    )
    if options.setup_only:
        return 0
    return run_server(settings, listen)
