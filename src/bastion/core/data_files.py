"""Files only the service user can read: the data directory 0700, what Bastion keeps in it 0600.

The database holds password hashes and the audit log, its WAL and shared-memory files hold
recent pages of it, and the key files unlock everything else. So:

- the server process runs with umask 077 (:func:`restrict_umask`), so every file it creates
  later is its owner's alone, whatever the umask it was started with;
- a new SQLite database file is created 0600 before SQLite opens it (:func:`create_private`);
  SQLite gives the ``-wal`` and ``-shm`` files it creates on the first write the mode of the
  database file, so they follow;
- at every start, :func:`tighten` takes the group and other bits off the data directory and
  off the files Bastion keeps there (a directory made by hand with mode 0755, or a database
  created by an older version under umask 022), and says what it changed. A file it cannot
  change (another owner) stops the start instead.

The master key is the exception: a key others could read may have been copied already, so
``load_or_create_master_key`` refuses to start rather than fix it (the operator decides
whether to replace it). docs/decisions/0023-file-modes.md.

Bastion writes its logs to standard error; where they end up (the journal, a file) is the
service manager's to protect.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from bastion.core.errors import ConfigError

#: no permission for group or others on anything created by the server process
PRIVATE_UMASK = 0o077
#: what :func:`tighten` takes away
OTHERS = stat.S_IRWXG | stat.S_IRWXO
#: the suffixes of the files SQLite and the store keep beside a database file
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal", ".writer-lock")
#: files of the data directory that only the service user may read
PRIVATE_FILES = ("demo-credentials.json",)
#: directories of the data directory whose contents only the service user may read
PRIVATE_DIRS = ("tls",)

log = logging.getLogger("bastion.files")


def restrict_umask() -> None:
    """Add 077 to the process umask (for the server process, before it creates anything)."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def create_private(path: Path) -> None:
    """Create an empty file with mode 0600 unless it exists (its directory 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def private_paths(data_dir: Path, database_url: str) -> list[Path]:
    """Every path :func:`tighten` looks at, directories before what they hold."""
    paths = [data_dir]
    paths += [data_dir / name for name in PRIVATE_FILES]
    for name in PRIVATE_DIRS:
        directory = data_dir / name
        paths.append(directory)
        if directory.is_dir():
            paths += sorted(p for p in directory.iterdir() if p.is_file())
    database = sqlite_file(database_url)
    if database is not None:
        paths += [Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS]
    return paths


def tighten(data_dir: Path, database_url: str) -> list[str]:
    """Take group and other permissions off the data directory and Bastion's files in it.

    Returns one sentence per path changed (logged as warnings). Raises
    :class:`ConfigError` for a path whose mode cannot be changed.
    """
    changed: list[str] = []
    for path in private_paths(data_dir, database_url):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & OTHERS:
            continue
        new = mode & ~OTHERS
        try:
            path.chmod(new)
        except OSError as exc:
            raise ConfigError(
                f"{path} can be read by other users (mode {mode:o}) and its mode cannot be "
                f"changed: {exc.strerror}.",
                hint=f"As its owner run: chmod {new:o} {path}; or run Bastion as its owner.",
            ) from exc
        what = "directory" if path.is_dir() else "file"
        changed.append(
            f"{what} {path} could be read by other users (mode {mode:o}); changed to {new:o}"
        )
    for sentence in changed:
        log.warning(sentence, extra={"fields": {"event": "file_mode_fixed"}})
    return changed
