"""Options and helpers shared by the server-side subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

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


def add_password_options(parser: argparse.ArgumentParser, whose: str = "the password") -> None:
    """``--password-stdin`` and ``--password-file``; without either, it is asked for
    (``--password`` alone says so; with a value it is refused)."""
    from bastion.cli.secret_input import SecretAction

    parser.add_argument(
        "--password", action=SecretAction, default=None, help=f"ask for {whose} (the default)"
    )
    parser.add_argument(
        "--password-stdin", action="store_true", help=f"read {whose} from one line of stdin"
    )
    parser.add_argument(
        "--password-file", metavar="FILE", help=f"read {whose} from FILE (its only line)"
    )


def read_password(args: argparse.Namespace, *, prompt: str = "password") -> str:
    """From ``--password-file``, ``--password-stdin``, else asked twice without echo on a
    terminal; never from the command line (``bastion.cli.secret_input``)."""
    from bastion.cli.secret_input import read_secret

    return read_secret(
        flag="--password",
        what=prompt,
        from_stdin=bool(getattr(args, "password_stdin", False)),
        from_file=getattr(args, "password_file", None),
    )


def open_authority(args: argparse.Namespace) -> Authority:
    from bastion.authority.context import Authority

    return Authority.open(settings_from(args))
