"""Start-up of the ``bastion`` command: a service command with warm caches, and ``--help``.

    .venv/bin/python -m bench.cli_startup [--runs 21] [--json] [--smoke]

Setup (not timed): ``bastion demo --setup-only --mailboxes 100`` in a fresh temporary data
directory (SQLite), ``bastion serve``, a profile signed in as ``rory@contoso`` (Read-Only
Reporting: password and TOTP) through the library's terminal method, and one run of the
command so the discovery document, the mail catalog and the token cache are on disk (the
warm state of an admin's second command). Timed, each as the median wall time of
``--runs`` fresh processes:

- ``bastion mail get-mailbox --identity user0000001@contoso`` (warm caches): start-up,
  parsing from the cached catalog, one request, JSON on stdout;
- ``bastion --help`` (a process that imports nothing of the client);
- ``python -c pass``, the floor every process pays.

Modules are byte-compiled once, as in an installed package (``PYTHONDONTWRITEBYTECODE`` is
lifted for the timed processes; the bytecode goes to the temporary directory).

Also printed: which of the modules the command must not import (rich, prompt_toolkit,
pydantic, SQLAlchemy...) it did import, from ``python -X importtime``: none is expected.
``--smoke``: two processes per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Account, Typist, bastion, demo_setup, machine, parse_args, start_server

TENANT = "contoso"
USER = "rory@contoso"
HEAVY = ("rich", "prompt_toolkit", "pydantic", "sqlalchemy", "starlette", "click", "yaml")


def wall(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def heavy_imports(command: list[str], env: dict[str, str]) -> list[str]:
    """The modules of :data:`HEAVY` the command imports (``python -X importtime``)."""
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in traced.stderr.splitlines()
        if line.startswith("import time:")
    }
    return sorted(m for m in HEAVY if m in modules)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import bastion as library
    from bastion.client import add_profile

    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    config_dir = data_dir / "client"
    info = demo_setup(data_dir, mailboxes=100)
    reader = Account.of_demo(info, USER)
    server = start_server(data_dir, cpus=None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(BASTION_CONFIG_DIR=str(config_dir), BASTION_KEY_STORAGE="file")
    # as installed: modules compiled once (into the temporary directory, not the sources)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(data_dir / "pycache")
    os.environ.update(BASTION_KEY_STORAGE="file")
    try:
        add_profile("bench", server.base_url, TENANT, config_dir=config_dir)
        library.connect(
            profile="bench",
            method="terminal",
            prompt=Typist(reader),
            config_dir=config_dir,
        ).close()
        command = bastion("mail", "get-mailbox", "--identity", f"user0000001@{TENANT}")
        first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        assert json.loads(first.stdout)[0]["primaryAddress"] == f"user0000001@{TENANT}"
        wall(bastion("--help"), env, 1)  # compiled, as the command's modules now are
        warm = wall(command, env, args.runs)
        heavy = heavy_imports(command, env)
        help_times = wall(bastion("--help"), env, args.runs)
        floor = wall([sys.executable, "-c", "pass"], env, args.runs)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "runs": args.runs,
        "warm_command_s": round(statistics.median(warm), 3),
        "warm_command_max_s": round(max(warm), 3),
        "help_s": round(statistics.median(help_times), 3),
        "python_floor_s": round(statistics.median(floor), 3),
        "heavy_modules_imported": heavy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="processes per figure")
    parser.add_argument("--json", action="store_true")
    args = parse_args(parser, smoke={"runs": 2})
    setup = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(setup))
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"  bastion mail get-mailbox --identity (warm caches): median "
        f"{result['warm_command_s'] * 1000:.0f} ms, max {result['warm_command_max_s'] * 1000:.0f}"
        f" ms over {result['runs']} runs\n"
        f"  bastion --help: median {result['help_s'] * 1000:.0f} ms\n"
        f"  python -c pass: median {result['python_floor_s'] * 1000:.0f} ms\n"
        f"  heavy modules on the command's path: {result['heavy_modules_imported'] or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
