"""Options and helpers shared by the server-side subcommands."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.errors import UsageError

if TYPE_CHECKING:
    from bastion.authority.context import Authority
    from bastion.config import Settings


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default: $XDG_DATA_HOME/bastion)"
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: SQLite in the data directory; "
        "also BASTION_DATABASE_URL)",
    )


def settings_from(args: argparse.Namespace, **extra: object) -> Settings:
    from bastion.config import Settings

    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        database_url=getattr(args, "database_url", None),
        **extra,
    )


def read_password(args: argparse.Namespace, *, prompt: str = "Password") -> str:
    """From stdin with --password-stdin, else asked twice on the terminal."""
    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError(
            "no password given.", hint="Pipe it in with --password-stdin, or run in a terminal."
        )
    first = getpass.getpass(f"{prompt}: ")
    second = getpass.getpass(f"{prompt} (again): ")
    if first != second:
        raise UsageError("the two passwords differ.")
    return first


def open_authority(args: argparse.Namespace) -> Authority:
    from bastion.authority.context import Authority

    return Authority.open(settings_from(args))
