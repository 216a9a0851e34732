"""``bastion mail get-mailbox --all --output jsonl`` over many mailboxes: objects per second
on the client's side, and the CLI process's peak memory.

    .venv/bin/python -m bench.cli_listing [--people 1000000] [--json] [--smoke]

Setup (not timed): ``bastion demo --setup-only --mailboxes N`` in a fresh temporary data
directory (SQLite), ``taskset -c 0 bastion serve``, and a profile in a fresh configuration
directory signed in as ``rory@contoso`` (Read-Only Reporting, password and TOTP) through the
library's terminal sign-in. Timed: the ``bastion`` command above in its own process under
``taskset -c 1``, its standard output read and its lines counted by this process. Its peak
resident memory is the kernel's ``ru_maxrss`` for that one child (``os.wait4``).
``--smoke``: 300 mailboxes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Account,
    Typist,
    bastion,
    demo_setup,
    machine,
    parse_args,
    pinned,
    server_env,
    start_server,
    two_cpus,
)

TENANT = "contoso"
USER = "rory@contoso"


def sign_in(base_url: str, config_dir: Path, account: Account) -> None:
    import bastion as library
    from bastion.client import add_profile

    os.environ["BASTION_KEY_STORAGE"] = "file"
    add_profile("bench", base_url, TENANT, config_dir=config_dir, make_current=True)
    with library.connect(
        profile="bench",
        method="terminal",
        prompt=Typist(account),
        config_dir=config_dir,
    ) as conn:
        conn.sign_in()


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    config_dir = data_dir / "client"
    info = demo_setup(data_dir, mailboxes=args.people)
    reader = Account.of_demo(info, USER)
    server = start_server(data_dir, cpus=args.server_cpus or None, workers=1)
    try:
        sign_in(server.base_url, config_dir, reader)
        env = server_env()
        env.update(BASTION_CONFIG_DIR=str(config_dir), BASTION_KEY_STORAGE="file")
        command = pinned(
            args.client_cpus or None,
            bastion("mail", "get-mailbox", "--all", "--output", "jsonl", "--non-interactive"),
        )
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=1 << 20
        )
        assert process.stdout is not None
        lines = 0
        while chunk := process.stdout.read(1 << 20):
            lines += chunk.count(b"\n")
        errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
        # this child's own resource usage (not the demo's or the server's)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        peak_kib = usage.ru_maxrss
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    if code != 0:
        raise SystemExit(f"bastion exited {code}: {errors[-2000:]}")
    return {
        "people": args.people,
        "objects": lines,
        "seconds": round(seconds, 2),
        "objects_per_s": round(lines / seconds),
        "client_peak_rss_mib": round(peak_kib / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--server-cpus", default="0", help="taskset list ('' for any)")
    parser.add_argument("--client-cpus", default="1", help="taskset list ('' for any)")
    parser.add_argument("--json", action="store_true")
    server_cpus, client_cpus = two_cpus()
    args = parse_args(
        parser, smoke={"people": 300, "server_cpus": server_cpus, "client_cpus": client_cpus}
    )
    setup = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(setup))
    result = run(args)
    print(
        f"  {result['objects']:,} mailboxes in {result['seconds']} s: "
        f"{result['objects_per_s']:,} objects/s; client peak memory "
        f"{result['client_peak_rss_mib']} MiB"
    )
    if args.json:
        print(json.dumps({**setup, "result": result}))
    return 0 if result["objects"] >= args.people else 1


if __name__ == "__main__":
    sys.exit(main())
