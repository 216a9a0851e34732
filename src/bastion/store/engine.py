"""The database engine: SQLite (WAL) by default, PostgreSQL when the URL says so.

SQLite needs two things SQLAlchemy does not do by itself: pragmas on every connection
(WAL, foreign keys, a busy timeout) and ``BEGIN IMMEDIATE``, so that a transaction that will
write takes the write lock at its start instead of failing half-way with "database is
locked" when two requests race.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bastion.core import json_codec
from bastion.core.data_files import create_private
from bastion.core.errors import BastionError, StoreUnavailable

if TYPE_CHECKING:
    from bastion.core.secrets_at_rest import Keyring

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: execution option marking a read-only transaction (``Store.read``)
READ_ONLY = "bastion_read_only"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # 0600 before SQLite opens it: its -wal and -shm files take the same mode
            create_private(Path(parsed.database))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # as many as the server's worker threads (40) use at once, so connections are
            # kept rather than opened and closed under load (each opening runs the pragmas)
            pool_size=40,
            max_overflow=20,
            json_deserializer=json_codec.loads,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        json_deserializer=json_codec.loads,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, below, decide how a transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit (a revocation too) survives a power loss; docs/decisions/0003.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A reader takes a snapshot and never blocks the writer (WAL); a writer takes the
        # write lock up front, so it cannot fail half-way on a lock upgrade.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN DEFERRED")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """The engine plus one way to run a unit of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Writers queue on a lock, in order, instead of
        # in SQLite's busy handler, whose growing sleeps let newcomers overtake and stretch
        # the tail latency to seconds: a thread lock within this process, and an flock on a
        # file beside the database between worker processes. PostgreSQL needs neither.
        self._writer: threading.Lock | None = None
        self._lock_fd: int | None = None
        if is_sqlite(engine):
            self._writer = threading.Lock()
            database = engine.url.database
            if database and database != ":memory:":
                self._lock_fd = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back on any error."""
        if self._writer is None:
            with self._transaction() as conn:
                yield conn
            return
        with self._writer:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                with self._transaction() as conn:
                    yield conn
            finally:
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: a consistent snapshot that waits for no writer (on
        SQLite it takes no write lock). Writing in it is a programming error."""
        with self._transaction(read_only=True) as conn:
            yield conn

    @contextmanager
    def _transaction(self, *, read_only: bool = False) -> Iterator[Connection]:
        try:
            with self.engine.connect() as raw:
                conn = raw.execution_options(**{READ_ONLY: True}) if read_only else raw
                tx = conn.begin()
                try:
                    yield conn
                except BastionError as exc:
                    if exc.keep_changes:
                        tx.commit()
                    else:
                        tx.rollback()
                    raise
                except BaseException:
                    tx.rollback()
                    raise
                tx.commit()
        except OperationalError as exc:
            raise StoreUnavailable(
                "The database is unavailable.", hint="Try again in a moment."
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def upgrade(engine: Engine, keyring: Keyring | None = None) -> None:
    """Apply every Alembic migration not yet applied. A migration that signs something
    (0011 signs the audit chain heads) finds ``keyring`` in the config's attributes."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["keyring"] = keyring
        command.upgrade(cfg, "head")


def open_store(url: str, *, migrate: bool = True, keyring: Keyring | None = None) -> Store:
    engine = make_engine(url)
    if migrate:
        upgrade(engine, keyring)
    return Store(engine)
