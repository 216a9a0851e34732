"""Starting and driving a real server process for tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bastion.core.config import Settings
from bastion.server.context import ServerContext
from bastion.server.tls import LocalTls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_postgres_database() -> str:
    """A fresh database in the test cluster; returns its SQLAlchemy URL."""
    base = os.environ["BASTION_TEST_POSTGRES_URL"]
    name = "bastion_" + secrets.token_hex(6)
    url = make_url(base)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


@dataclass
class ServerProcess:
    base_url: str
    data_dir: Path
    database_url: str | None
    clock_file: Path
    process: subprocess.Popen[bytes]
    log_file: Path
    offset: float = 0.0
    _authority: ServerContext | None = field(default=None, repr=False)
    #: more BASTION_* variables for this process (kept across restarts)
    extra_env: dict[str, str] = field(default_factory=dict)

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            clock_offset_file=self.clock_file,
        )

    @property
    def authority(self) -> ServerContext:
        """The same store and keys as the server, for setting up test data in-process."""
        if self._authority is None:
            self._authority = ServerContext.open(self.settings(), migrate=False)
        return self._authority

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward (every process reads the same file)."""
        self.offset += seconds
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(repr(self.offset))
        os.replace(tmp, self.clock_file)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["BASTION_DATA_DIR"] = str(self.data_dir)
        env["BASTION_CLOCK_OFFSET_FILE"] = str(self.clock_file)
        if self.database_url:
            env["BASTION_DATABASE_URL"] = self.database_url
        else:
            env.pop("BASTION_DATABASE_URL", None)
        env.update(self.extra_env)
        return env

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "bastion", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"bastion {' '.join(args)} failed: {result.stderr}")
        return result

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def restart(self) -> None:
        """Stop the server process and start it again on the same port and data (a deploy,
        a crash and recovery); the test clock keeps its offset."""
        args = list(self.process.args)  # type: ignore[arg-type]
        self.stop()
        self._authority = None
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=self.env()
            )
        wait_healthy(self.base_url, self.process, self.log_file)

    def stop(self) -> None:
        if self._authority is not None:
            self._authority.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_healthy(url: str, process: subprocess.Popen[Any], log_file: Path, **client: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_file.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1, **client).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not start: {log_file.read_text(errors='replace')[-3000:]}")


def start_server(
    data_dir: Path,
    *,
    database_url: str | None,
    extra: list[str] | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
    name: str = "server",
    tls: LocalTls | None = None,
    base_url: str | None = None,
) -> ServerProcess:
    """``bastion serve`` on a free port (or ``port``); ``env`` adds BASTION_* variables;
    ``tls`` serves HTTPS with that certificate. Several processes may share one data
    directory, each with its own ``name`` (its log is ``{name}.log``); they share the test
    clock. ``base_url`` names a relay in front of the process (a load balancer): it is the
    server's ``--base-url``, and the process is reached, its health checked too, through
    it."""
    port = port or free_port()
    scheme, verify = "http", {}
    if tls is not None:
        scheme = "https"
        verify = {"verify": ssl.create_default_context(cafile=str(tls.ca_file))}
        extra = [*(extra or []), "--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file)]
    if base_url is not None:
        extra = [*(extra or []), "--base-url", base_url]
    clock_file = data_dir / "clock-offset"
    if not clock_file.exists():
        clock_file.write_text("0")
    log_file = data_dir / f"{name}.log"
    proc = ServerProcess(
        base_url=base_url or f"{scheme}://127.0.0.1:{port}",
        data_dir=data_dir,
        database_url=database_url,
        clock_file=clock_file,
        process=None,  # type: ignore[arg-type]
        log_file=log_file,
        offset=float(clock_file.read_text() or 0),
        extra_env=dict(env or {}),
    )
    with open(log_file, "wb") as log:
        proc.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bastion",
                "serve",
                "--port",
                str(port),
                "--clock-offset-file",
                str(clock_file),
                *(extra or []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=proc.env(),
        )
    wait_healthy(proc.base_url, proc.process, log_file, **verify)
    return proc


@contextlib.contextmanager
def running_server(backend: str, data_dir: Path, **options: Any) -> Iterator[ServerProcess]:
    """``start_server`` (with ``options``) on a fresh database of ``backend`` (SQLite in
    ``data_dir``, or a new PostgreSQL database), stopped on leaving."""
    database_url = create_postgres_database() if backend == "postgresql" else None
    proc = start_server(data_dir, database_url=database_url, **options)
    try:
        yield proc
    finally:
        proc.stop()
