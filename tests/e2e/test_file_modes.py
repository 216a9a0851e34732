"""Files only the service user can read (issue 9 item 12): the data directory 0700; the
database, its WAL and shared-memory files, the lock file and the master key 0600; checked and
fixed, with a warning, at every start."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.flows import make_tenant
from tests.support.plane import admin_token
from tests.support.server import ServerProcess, create_postgres_database, start_server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server started under umask 022 in a data directory someone made with mode 0755."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    database_url = create_postgres_database() if backend == "postgresql" else None
    old = os.umask(0o022)
    try:
        proc = start_server(data_dir, database_url=database_url)
    finally:
        os.umask(old)
    try:
        yield proc
    finally:
        proc.stop()


def test_the_data_directory_and_its_files_are_the_service_users_alone(
    loose: ServerProcess,
) -> None:
    data_dir = loose.data_dir
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "master.key") == 0o600
    database = data_dir / "bastion.db"
    if loose.database_url is None:
        assert mode(database) == 0o600
        assert mode(Path(f"{database}.writer-lock")) == 0o600
    # Writes, from this process (umask 022) and from the server: the WAL and shared-memory
    # files SQLite creates on a write get the database file's mode.
    old = os.umask(0o022)
    try:
        t = make_tenant(loose)
        admin_token(t)
    finally:
        os.umask(old)
    if loose.database_url is None:
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{database}{suffix}")
            assert companion.exists(), companion
            assert mode(companion) == 0o600, (companion, oct(mode(companion)))


def test_every_start_takes_away_what_others_could_read_and_says_so(
    loose: ServerProcess,
) -> None:
    loose.stop()
    data_dir = loose.data_dir
    data_dir.chmod(0o755)
    database = data_dir / "bastion.db"
    loosened = [data_dir]
    if loose.database_url is None:
        database.chmod(0o644)
        loosened.append(database)
    tls = data_dir / "tls"
    tls.mkdir(mode=0o755)
    tls.chmod(0o755)
    (tls / "server-key.pem").write_text("not a key")
    (tls / "server-key.pem").chmod(0o644)
    loosened += [tls, tls / "server-key.pem"]
    before = len(loose.log())
    loose.restart()
    assert mode(data_dir) == 0o700
    assert mode(tls) == 0o700
    assert mode(tls / "server-key.pem") == 0o600
    if loose.database_url is None:
        assert mode(database) == 0o600
    warnings = loose.log()[before:]
    for path in loosened:
        assert f"{path} could be read by other users" in warnings, warnings[-2000:]
    # A second start finds nothing to fix and says nothing.
    before = len(loose.log())
    loose.restart()
    assert "could be read by other users" not in loose.log()[before:]


def test_a_master_key_others_could_read_is_refused_not_fixed(loose: ServerProcess) -> None:
    loose.stop()
    key = loose.data_dir / "master.key"
    key.chmod(0o644)
    refused = loose.cli("tenant", "show", "nobody", check=False)
    assert refused.returncode != 0
    assert "readable by others" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert mode(key) == 0o644
