"""What a password-and-TOTP sign-in costs beyond Argon2id itself.

    .venv/bin/python -m bench.signin_overhead [--users 20] [--flow code|device] [--smoke]

(a) One Argon2id verify with Bastion's parameters (``PasswordHasher(Argon2Params())``),
timed in this process on the server's core, before the server starts and after it stops.
(b) Full sign-ins through the pages of a real server (``taskset -c 0 bastion serve``,
SQLite, fresh data directory), one after another, each by a different user with an
authenticator registered (created in-process in setup, as tests/support/flows.py's
make_tenant does): with ``--flow code``, the authorization request, login page, password
POST, TOTP page, TOTP POST (which redirects to the client with the code) and the token
request with the PKCE verifier; with ``--flow device``, the device code request, the pages
from the user code to the approval, and the token request. The client runs on the other
core and reuses one connection pool. Overhead = (b - a) / a, on the client's clock, and in
the server's own time (the ``duration_ms`` of each request in its JSON log). ``--smoke``:
two users, two Argon2id samples before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bastion.authority import factor_store
from bastion.authority.factors import totp
from bastion.authority.passwords import PasswordHasher
from bastion.core.config import Argon2Params, Settings
from bastion.server.bootstrap import new_tenant, new_user
from bastion.server.context import ServerContext
from bench.common import (
    Account,
    KeptTransport,
    code_sign_in,
    device_sign_in,
    machine,
    parse_args,
    start_server,
    two_cpus,
)

TENANT = "bench"


def create_users(data_dir: Path, count: int) -> list[Account]:
    """A tenant and ``count`` MFA-enforced users, each with a TOTP authenticator."""
    auth = ServerContext.open(Settings(data_dir=data_dir))
    accounts = []
    try:
        with auth.store.begin() as conn:
            tenant = new_tenant(auth, conn, name=TENANT, display_name="Bench")
            for i in range(count):
                account = Account(
                    f"user{i}@{TENANT}", "pw-" + secrets.token_urlsafe(12), totp.generate_secret()
                )
                user = new_user(
                    auth,
                    conn,
                    tenant,
                    upn=account.username,
                    display_name=f"User {i}",
                    password=account.password,
                    mfa_state="enforced",
                )
                assert account.totp_secret is not None
                factor_store.add_totp(
                    conn,
                    auth.keyring,
                    tenant_id=tenant.id,
                    user_id=user.id,
                    secret=account.totp_secret,
                    accepted_step=None,
                    now=auth.now(),
                )
                accounts.append(account)
    finally:
        auth.close()
    return accounts


def argon2_verify_ms(samples: int) -> list[float]:
    params = Argon2Params()
    hasher = PasswordHasher(params)
    password = "pw-" + secrets.token_urlsafe(12)
    stored = hasher.hash(password)
    hasher.verify(stored, password)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        assert hasher.verify(stored, password)
        times.append(1000 * (time.perf_counter() - started))
    return times


def server_durations(log_file: Path) -> dict[str, float]:
    """request_id -> duration_ms, from the server's JSON request log."""
    found = {}
    for line in log_file.read_text().splitlines():
        if line.startswith("{") and '"request_id"' in line:
            entry = json.loads(line)
            found[entry["request_id"]] = float(entry["duration_ms"])
    return found


def step_name(request: httpx.Request) -> str:
    path = request.url.path.replace(f"/t/{TENANT}", "")
    return f"{request.method} {path}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20, help="sign-ins, one user each")
    parser.add_argument("--argon2-samples", type=int, default=30)
    parser.add_argument("--flow", choices=["code", "device"], default="code")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    server_cpus, client_cpus = two_cpus()
    args = parse_args(
        parser,
        smoke={
            "users": 2,
            "argon2_samples": 2,
            "server_cpus": server_cpus,
            "client_cpus": client_cpus,
        },
    )
    flows: dict[str, Callable[..., dict[str, Any]]] = {
        "code": code_sign_in,
        "device": device_sign_in,
    }
    sign_in = flows[args.flow]

    def pin(cpus: str) -> None:
        if cpus:
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})

    everything = os.sched_getaffinity(0)
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    try:
        accounts = create_users(data_dir, args.users + 1)
        pin(args.server_cpus)  # (a) on the core the server will use
        argon2 = argon2_verify_ms(args.argon2_samples)
        os.sched_setaffinity(0, everything)
        server = start_server(data_dir, cpus=args.server_cpus or None)
        pin(args.client_cpus)
        seen: list[tuple[str, str]] = []  # (step, request id) of every answer

        def record(response: httpx.Response) -> None:
            seen.append((step_name(response.request), response.headers["x-request-id"]))

        client = {"event_hooks": {"response": [record]}, "transport": KeptTransport()}
        walls, client_cpu, marks = [], [], []
        try:
            sign_in(server.base_url, TENANT, accounts[-1], **client)  # warm-up
            for account in accounts[: args.users]:
                marks.append(len(seen))
                started, cpu = time.perf_counter(), time.process_time()
                tokens = sign_in(server.base_url, TENANT, account, **client)
                walls.append(1000 * (time.perf_counter() - started))
                client_cpu.append(1000 * (time.process_time() - cpu))
                assert "refresh_token" in tokens and "access_token" in tokens
            marks.append(len(seen))
        finally:
            server.stop()
        pin(args.server_cpus)  # (a) again, so that a slower or faster spell counts for both
        argon2 += argon2_verify_ms(args.argon2_samples)
        durations = server_durations(server.log_file)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    per_step: dict[str, list[float]] = defaultdict(list)
    server_totals = []
    for start, end in itertools.pairwise(marks):
        total = 0.0
        for step, request_id in seen[start:end]:
            per_step[step].append(durations[request_id])
            total += durations[request_id]
        server_totals.append(total)
    a = statistics.median(argon2)
    b = statistics.median(walls)
    b_server = statistics.median(server_totals)
    params = Argon2Params()
    print(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d")}))
    print(
        f"(a) Argon2id verify, m={params.memory_kib} KiB t={params.time_cost} "
        f"p={params.parallelism}: median {a:.1f} ms (min {min(argon2):.1f}, "
        f"max {max(argon2):.1f}, {len(argon2)} samples)"
    )
    requests = (marks[1] - marks[0]) if len(marks) > 1 else 0
    print(
        f"(b) {args.flow} sign-in with password + TOTP, {requests} HTTP requests: "
        f"median {b:.1f} ms on the client (min {min(walls):.1f}, max {max(walls):.1f}, "
        f"{len(walls)} users)\n    of which the server's own time {b_server:.1f} ms, the client's "
        f"CPU (httpx, page parsing) {statistics.median(client_cpu):.1f} ms"
    )
    print(f"overhead (b - a) / a: {100 * (b - a) / a:.0f} % on the client's clock, ", end="")
    print(f"{100 * (b_server - a) / a:.0f} % in server time")
    print("server time per request (median ms, from the server's duration_ms):")
    for step, values in per_step.items():
        print(f"  {statistics.median(values):7.2f}  {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
