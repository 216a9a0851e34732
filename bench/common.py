"""What the benchmarks share: the machine, a pinned server process, signing in, and the
``--smoke`` runs that keep them working."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import psycopg
from sqlalchemy.engine import make_url
from tests.support.browser import Browser

from bastion.authority.factors import totp
from bastion.authority.grants.pkce_verification import s256
from bastion.core.secrets_at_rest import random_token

CLIENT_ID = "bastion-cli"
SCOPE = "openid profile offline_access"
#: a registered loopback redirect of bastion-cli; any port matches (RFC 8252 section 7.3)
REDIRECT_URI = "http://127.0.0.1:9/callback"


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, kernel and Python: what the figures depend on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    mem_kib = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def parse_args(parser: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """The command line, with ``--smoke``: the same run end to end with ``smoke`` as the
    defaults (tiny sizes, a second or two of load), to show the benchmark still works; its
    figures mean nothing. Options given on the command line still win over ``smoke``."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes: check that the benchmark runs, measure nothing",
    )
    args = parser.parse_args()
    unknown = set(smoke) - set(vars(args))
    if unknown:  # a misspelt option would otherwise leave a full-size default in place
        raise ValueError(f"smoke defaults for no option: {', '.join(sorted(unknown))}")
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args()
    return args


def two_cpus() -> tuple[str, str]:
    """The server's and the load's CPUs for a smoke run: the first two this process may use,
    or ``("", "")`` (nothing pinned) when it may use only one."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return "", ""
    return str(allowed[0]), str(allowed[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's worker processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found += process_tree(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes, from /proc/PID/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@dataclass
class Server:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bastion(*args: str) -> list[str]:
    return [sys.executable, "-m", "bastion", *args]


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def storage_args(data_dir: Path, database_url: str | None) -> list[str]:
    """``--data-dir`` (the master key lives there) and, for PostgreSQL, ``--database-url``."""
    return [
        "--data-dir",
        str(data_dir),
        *(["--database-url", database_url] if database_url else []),
    ]


def demo_setup(
    data_dir: Path, mailboxes: int = 2000, database_url: str | None = None
) -> dict[str, Any]:
    """``bastion demo --json --setup-only``: tenant contoso, its users' credentials and
    ``mailboxes`` seeded people with mailboxes."""
    out = subprocess.run(
        bastion(
            "demo",
            "--json",
            "--setup-only",
            *storage_args(data_dir, database_url),
            "--mailboxes",
            str(mailboxes),
        ),
        capture_output=True,
        text=True,
        check=True,
        env=server_env(),
    ).stdout
    info: dict[str, Any] = json.loads(out.splitlines()[0])
    return info


def start_server(
    data_dir: Path, *, cpus: str | None, workers: int = 1, database_url: str | None = None
) -> Server:
    """``bastion serve`` on 127.0.0.1, under ``taskset -c CPUS`` when given."""
    port = free_port()
    command = bastion(
        "serve",
        *storage_args(data_dir, database_url),
        "--port",
        str(port),
        "--workers",
        str(workers),
    )
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    log_file = data_dir / "server.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env())
    server = Server(f"http://127.0.0.1:{port}", data_dir, process, log_file)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start: {log_file.read_text()[-2000:]}")


def sqlite_pragmas(data_dir: Path) -> dict[str, Any]:
    """journal_mode and synchronous as Bastion's engine sets them on every connection."""
    from bastion.store.engine import make_engine

    engine = make_engine(f"sqlite:///{data_dir / 'bastion.db'}")
    try:
        with engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        engine.dispose()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": mode, "synchronous": names.get(int(sync or 0), sync)}


class KeptTransport(httpx.BaseTransport):
    """One connection pool for many short-lived clients; closing a client leaves it open.

    A new ``httpx.Client`` builds an SSL context (about 20 ms here) unless it is given a
    transport: timed sign-ins must not pay for that on the client side.
    """

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    totp_secret: bytes | None = None

    @classmethod
    def of_demo(cls, info: dict[str, Any], username: str) -> Account:
        """A demo user from ``bastion demo --json``, with their authenticator if any."""
        user = next(u for u in info["users"] if u["username"] == username)
        secret = user.get("totp_secret")
        return cls(
            user["username"], user["password"], totp.base32_to_secret(secret) if secret else None
        )


class Typist:
    """The person at the keyboard for the library's terminal sign-in: a user name, a
    password, then a one-time code when the account has an authenticator."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def ask(self, message: str, *, secret: bool = False) -> str:
        if message.startswith("User name"):
            return self.account.username
        if message.startswith("One-time code"):
            assert self.account.totp_secret is not None, "the account asks for a second factor"
            return totp.code_at(self.account.totp_secret, time.time())
        return self.account.password

    def show(self, message: str) -> None:
        pass

    def open_url(self, url: str) -> bool:
        return False


def _pages(browser: Browser, tenant: str, account: Account) -> httpx.Response:
    """From the login page to the end of the sign-in: password, then TOTP if asked."""
    response = browser.submit(
        f"/t/{tenant}/login", {"username": account.username, "password": account.password}
    )
    if "/login/mfa" in str(response.url):
        assert account.totp_secret is not None, "the account asks for a second factor"
        code = totp.code_at(account.totp_secret, time.time())
        response = browser.submit(f"/t/{tenant}/login/mfa", {"code": code})
    return response


def device_sign_in(base_url: str, tenant: str, account: Account, **client: Any) -> dict[str, Any]:
    """RFC 8628 through the pages: device code, user code, sign-in, approve, token."""
    issuer = f"{base_url}/t/{tenant}"
    with httpx.Client(**client) as http:
        start = http.post(
            f"{issuer}/oauth2/devicecode", data={"client_id": CLIENT_ID, "scope": SCOPE}
        )
        start.raise_for_status()
        user_code = start.json()["user_code"]
        browser = Browser(base_url, **client)
        try:
            browser.get(f"/t/{tenant}/device?user_code={user_code}")
            response = browser.submit(f"/t/{tenant}/device", {"user_code": user_code})
            if "/login" in str(response.url):
                response = _pages(browser, tenant, account)
            assert "/device/confirm" in str(response.url), response.text[:300]
            done = browser.submit(f"/t/{tenant}/device/confirm", {"action": "approve"})
            assert done.status_code == 200, done.text[:300]
        finally:
            browser.close()
        answer = http.post(
            f"{issuer}/oauth2/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": start.json()["device_code"],
                "client_id": CLIENT_ID,
            },
        )
    answer.raise_for_status()
    tokens: dict[str, Any] = answer.json()
    return tokens


def code_sign_in(base_url: str, tenant: str, account: Account, **client: Any) -> dict[str, Any]:
    """Authorization code with PKCE through the pages, then the token request."""
    verifier = random_token(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
            "state": random_token(8),
        }
    )
    browser = Browser(base_url, **client)
    try:
        response = browser.get(f"/t/{tenant}/oauth2/authorize?{query}")
        assert "/login" in str(response.url), response.text[:300]
        response = _pages(browser, tenant, account)
        location = response.headers.get("location", "")
        assert location.startswith(REDIRECT_URI), f"{response.status_code} {response.text[:300]}"
        code = parse_qs(urlsplit(location).query)["code"][0]
        answer = browser.client.post(
            f"/t/{tenant}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            },
        )
    finally:
        browser.close()
    answer.raise_for_status()
    tokens: dict[str, Any] = answer.json()
    return tokens


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def run_wrk(
    lua: Path,
    base_url: str,
    *,
    connections: int,
    seconds: float,
    cpus: str | None,
    env: dict[str, str],
) -> tuple[dict[str, Any], float]:
    """One wrk run with a Lua script that prints a ``BENCH {json}`` summary line; returns
    the summary and wrk's own CPU seconds (to show the load generator is not the limit)."""
    command = pinned(
        cpus,
        [
            "wrk",
            f"-t{connections}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            base_url,
        ],
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    library = {"BENCH_LIB": str(Path(__file__).with_name("wrk_summary.lua"))}
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **library, **env}, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary: dict[str, Any] = json.loads(line[len("BENCH ") :])
    return summary, used


def wait_idle(server: Server) -> None:
    """Until the server has finished the requests wrk left in flight when it stopped."""
    pids = server.pids
    used = cpu_seconds(pids)
    for _ in range(100):
        time.sleep(0.3)
        now = cpu_seconds(pids)
        if now - used < 0.03:
            return
        used = now


def rss_kib(pids: list[int]) -> int:
    """Resident memory of these processes, in KiB (from /proc)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def create_postgres_database(base: str, prefix: str) -> tuple[str, str]:
    """A new, empty database on the server of ``base`` (a SQLAlchemy URL); returns its URL
    and the libpq DSN of ``base`` (to drop it with)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = make_url(base)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), dsn


def drop_postgres_database(dsn: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
