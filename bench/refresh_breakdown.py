"""Where one refresh grant's time goes, measured in-process, one grant at a time.

    .venv/bin/python -m bench.refresh_breakdown [--grants 3000] [--smoke]

The same grant as ``bench.refresh_grants`` (rotating refresh token, ``resource`` alternating
between two services, JWT access token + ID token + new refresh token), sent to Bastion's
ASGI application in this process (httpx's ASGI transport: no socket, no uvicorn), with a
timer wrapped around each step. Nothing in ``src/`` is changed: the wrappers are installed
on this process's modules only. Times are wall-clock per grant; with one grant at a time and
SQLite in the page cache, wall-clock is CPU time. Indented lines are parts of the line above.
Every timed step must be called during the grants: one that is not (renamed, or no longer on
the grant's path) makes the run exit non-zero rather than print a zero. ``--smoke``: two
chains, ten warm-up grants and thirty timed ones.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import io
import logging
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import Account, code_sign_in, demo_setup, parse_args, start_server

TIMES: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)

ASGI = "ASGI application, whole request"
THREAD = "  writer queue: waiting, then the batch (GroupCommit.arun)"
ENDPOINT = "    the grant, one unit of the batch (_grant)"
BEGIN = "      batch start (pool checkout, BEGIN IMMEDIATE; once per batch)"
END = "      batch end (COMMIT, pool checkin; once per batch)"
#: (owner module or class path, attribute, label), in the order printed
STEPS = [
    ("bastion.http.oauth_endpoints", "read_form", "  form parsing (Starlette)"),
    ("bastion.http.oauth_endpoints", "load_tenant", "      tenant (cached)"),
    ("bastion.http.oauth_endpoints", "request_client", "      client (cached)"),
    (
        "bastion.authority.grants.refresh_token:RefreshTokenGrant",
        "handle",
        "      refresh grant",
    ),
    ("bastion.authority.grants.refresh_token", "parse_scope_request", "        scope, resource"),
    (
        "bastion.authority.grants.refresh_token",
        "redeem_refresh_token",
        "        redeem presented token (successor HMAC, UPDATE..RETURNING)",
    ),
    (
        "bastion.authority.grants.refresh_token",
        "load_subject",
        "        session and user (one SELECT), roles (SELECT)",
    ),
    ("bastion.authority.grants.issue", "touch", "          session activity (UPDATE)"),
    ("bastion.authority.grants.refresh_token", "token_response", "        token response"),
    ("bastion.authority.grants.issue", "access_token", "          access token (ES256 JWT)"),
    ("bastion.authority.grants.issue", "id_token", "          ID token (ES256 JWT)"),
    (
        "bastion.authority.grants.issue",
        "store_refresh_token",
        "          new refresh token, the successor (INSERT)",
    ),
    ("bastion.http.oauth_endpoints", "_json", "      JSON response"),
    ("bastion.http.application:log", "info", "  request log line (JSON formatter, stream)"),
    ("bastion.authority.tokens", "sign", "ES256 signing with joserfc, both JWTs"),
    ("bastion.core.secrets_at_rest:Keyring", "lookup_hash", "HMAC-SHA-256 lookups"),
    (
        "bastion.store.prepared:Prepared",
        "_driver_execute",
        "statements through the SQLite driver (store/prepared.py)",
    ),
    (
        "sqlalchemy.engine.default:DefaultDialect",
        "do_execute",
        "statements through SQLAlchemy (BEGIN IMMEDIATE and any other)",
    ),
    ("sqlalchemy.engine.default:DefaultDialect", "do_commit", "sqlite3 COMMIT"),
]
ORDER = [ASGI, STEPS[0][2], THREAD, ENDPOINT, BEGIN, *[s[2] for s in STEPS[1:-6]], END]
ORDER += [s[2] for s in STEPS[-6:]]


def _owner(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    module = __import__(module_name, fromlist=["_"])
    return getattr(module, attribute) if attribute else module


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` with a wrapper adding its duration to TIMES[label]."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - started
            CALLS[label] += 1

    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - started
            CALLS[label] += 1

    setattr(owner, name, async_wrapper if inspect.iscoroutinefunction(original) else wrapper)


def instrument() -> None:
    from bastion.http import oauth_endpoints
    from bastion.store import engine
    from bastion.store.group_commit import GroupCommit

    for path, name, label in STEPS:
        timed(_owner(path), name, label)
    engine.Store.begin = timed_begin(engine.Store.begin)  # type: ignore[method-assign]
    timed(GroupCommit, "arun", THREAD)
    timed(oauth_endpoints, "_grant", ENDPOINT)


def timed_begin(original: Callable[..., Any]) -> Callable[..., Any]:
    """Store.begin split into its start (pool checkout + BEGIN IMMEDIATE) and its end."""

    @contextmanager
    def begin(self: Any) -> Iterator[Any]:
        started = time.perf_counter()
        manager = original(self)
        conn = manager.__enter__()
        TIMES[BEGIN] += time.perf_counter() - started
        try:
            yield conn
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            ended = time.perf_counter()
            manager.__exit__(None, None, None)
            TIMES[END] += time.perf_counter() - ended

    return begin


def timed_app(app: Any) -> Any:
    async def whole(scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            TIMES[ASGI] += time.perf_counter() - started

    return whole


async def drive(app: Any, base: str, tokens: list[str], grants: int) -> float:
    """Sequential grants, chains taken in turn; returns the wall-clock seconds."""
    resources = [f"{base}/api/mail", f"{base}/api/sites"]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        started = time.perf_counter()
        for i in range(grants):
            chain = i % len(tokens)
            answer = await client.post(
                "/t/contoso/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens[chain],
                    "client_id": "bastion-cli",
                    "resource": resources[i % 2],
                },
            )
            if answer.status_code != 200:
                raise RuntimeError(answer.text)
            tokens[chain] = answer.json()["refresh_token"]
        return time.perf_counter() - started


def sign_ins(data_dir: Path, chains: int) -> list[str]:
    """Refresh tokens from authorization-code sign-ins of sam@contoso, through a real
    server."""
    info = demo_setup(data_dir)
    sam = next(u for u in info["users"] if u["username"] == "sam@contoso")
    server = start_server(data_dir, cpus=None)
    try:
        account = Account(sam["username"], sam["password"])
        return [
            code_sign_in(server.base_url, "contoso", account)["refresh_token"]
            for _ in range(chains)
        ]
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=3000)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=300, help="untimed grants first")
    args = parse_args(parser, smoke={"grants": 30, "chains": 2, "warmup": 10})
    from bastion.core.config import Settings
    from bastion.server import json_logs as web_logging
    from bastion.server.app import create_app
    from bastion.server.context import ServerContext

    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    try:
        tokens = sign_ins(data_dir, args.chains)
        web_logging.configure("INFO")
        # The request log, formatted as in the server, into memory instead of a file.
        logging.getLogger().handlers[0].setStream(io.StringIO())  # type: ignore[attr-defined]
        auth = ServerContext.open(Settings(data_dir=data_dir), migrate=False)
        app = create_app(auth)
        base = "http://127.0.0.1:8700"
        asyncio.run(drive(app, base, tokens, args.warmup))  # caches, SQLAlchemy compilation
        plain = asyncio.run(drive(app, base, tokens, args.grants))
        instrument()
        TIMES.clear()
        CALLS.clear()
        wall = asyncio.run(drive(timed_app(app), base, tokens, args.grants))
        auth.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    per = 1000 / args.grants
    print(f"{args.grants} sequential refresh grants in-process (ASGI; no socket, no uvicorn)")
    print(f"  {1000 * plain / args.grants:.3f} ms/grant uninstrumented, client side included")
    print(f"  {wall * per:.3f} ms/grant instrumented, client side included")
    print("  ms/grant  calls/grant  step")
    for label in ORDER:
        calls = f"{CALLS[label] / args.grants:5.1f}" if label in CALLS else "     "
        print(f"  {TIMES[label] * per:6.3f}    {calls}     {label}")
    missed = [label.strip() for _, _, label in STEPS if not CALLS[label]]
    for label in missed:
        print(f"  error: never called, so not measured: {label}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
