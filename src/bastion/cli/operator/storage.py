"""Flags shared by the operator's commands: where the data is (``--data-dir``,
``--database-url``) and where a password comes from (``--password-stdin``,
``--password-file``, else asked), as the options values the commands run from."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.core.config import Settings
    from bastion.server.context import ServerContext


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default: $XDG_DATA_HOME/bastion)"
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: SQLite in the data directory; "
        "also BASTION_DATABASE_URL)",
    )


@dataclass(frozen=True)
class StorageFlags:
    """``--data-dir`` and ``--database-url``, parsed (None: the default)."""

    data_dir: Path | None = None
    database_url: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StorageFlags:
        return cls(getattr(args, "data_dir", None), getattr(args, "database_url", None))

    def settings(self, **extra: object) -> Settings:
        from bastion.core.config import Settings

        return Settings.from_env(data_dir=self.data_dir, database_url=self.database_url, **extra)

    def open_authority(self) -> ServerContext:
        from bastion.server.context import ServerContext

        return ServerContext.open(self.settings())


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


@dataclass(frozen=True)
class PasswordFlags:
    """Where a password comes from: ``--password-stdin``, ``--password-file``, else asked."""

    from_stdin: bool = False
    from_file: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> PasswordFlags:
        return cls(
            bool(getattr(args, "password_stdin", False)), getattr(args, "password_file", None)
        )

    def read(self, *, prompt: str = "password") -> str:
        """From ``--password-file``, ``--password-stdin``, else asked twice without echo on
        a terminal; never from the command line (``bastion.cli.secret_input``)."""
        from bastion.cli.secret_input import read_secret

        return read_secret(
            flag="--password", what=prompt, from_stdin=self.from_stdin, from_file=self.from_file
        )
