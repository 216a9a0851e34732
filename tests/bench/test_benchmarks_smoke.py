"""Every benchmark under ``bench/`` still runs: each in its smoke mode (``python -m
bench.NAME --smoke``: the same code end to end with tiny sizes and a second or two of load),
in its own process, must exit 0 and print its report. No figure is checked, only that the
run worked: a benchmark exits non-zero on an error, a non-200 answer or an exception.

The list of runs is checked against the directory, so a new benchmark cannot be added
without one. The benchmarks that drive their load with wrk skip where it is missing, except
under ``make test``, which installs it (scripts/ensure-wrk) and sets ``BASTION_REQUIRE_WRK``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BENCH = ROOT / "bench"
#: the modules of bench/ that are not benchmarks
HELPERS = frozenset({"__init__", "common"})
#: seconds a smoke run may take before it counts as hung (they take a few)
TIMEOUT = 180


@dataclass(frozen=True)
class Smoke:
    module: str
    #: a regular expression the report on standard output must match
    report: str
    args: tuple[str, ...] = ()
    #: the load is driven by wrk, with the Lua script beside the module
    wrk: bool = False
    #: what the report must match besides when PostgreSQL is given (make test gives it)
    postgres_report: str | None = None

    @property
    def name(self) -> str:
        return "-".join([self.module, *(a.lstrip("-") for a in self.args)])


SMOKES = [
    Smoke(
        "audit_append",
        r"sqlite +\(e\) +320 records in",
        postgres_report=r"postgresql +\(e\) +320 records in",
    ),
    Smoke("big_bodies", r'"requests": 12,(.|\n)*"413": 12'),
    Smoke("cli_listing", r"300 mailboxes in .* objects/s"),
    Smoke("cli_startup", r"heavy modules on the command's path: "),
    # the row of two connections, ending in its failures: none
    Smoke("client_credentials", r"grants/s on 2 connections(.|\n)*errors 0", wrk=True),
    Smoke("mailbox_listing", r"300 mailboxes in .*\(3 pages of 100\)"),
    Smoke("mailbox_reads", r"Get-Mailbox -Identity/s .*errors 0", wrk=True),
    Smoke("refresh_breakdown", r"30 sequential refresh grants(.|\n)*new refresh token"),
    Smoke(
        "refresh_grants", r"grants/s(.|\n)*errors \(non-200 or socket\) 0  over 10 s 0", wrk=True
    ),
    Smoke("signin_overhead", r"\(b\) code sign-in with password \+ TOTP"),
    # the device flow is the other path through the same benchmark
    Smoke("signin_overhead", r"\(b\) device sign-in with password \+ TOTP", ("--flow", "device")),
]


def test_every_benchmark_has_a_smoke_run() -> None:
    modules = {path.stem for path in BENCH.glob("*.py")} - HELPERS
    listed = {smoke.module for smoke in SMOKES}
    assert not modules - listed, f"benchmarks without a smoke run: {sorted(modules - listed)}"
    assert not listed - modules, f"smoke runs of no benchmark: {sorted(listed - modules)}"


def test_every_wrk_script_belongs_to_a_benchmark_run_under_wrk() -> None:
    scripts = {path.stem for path in BENCH.glob("*.lua")} - {"wrk_summary"}  # their library
    assert scripts == {smoke.module for smoke in SMOKES if smoke.wrk}


def run(command: list[str]) -> tuple[int, str, str]:
    """The command's exit code and output; on a hang, its whole process group (the
    benchmark's server too) is killed rather than left behind."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return -1, out, f"{err}\n(killed after {TIMEOUT} s)"
    return process.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("smoke", SMOKES, ids=[smoke.name for smoke in SMOKES])
def test_benchmark_runs_in_smoke_mode(smoke: Smoke) -> None:
    if smoke.wrk and shutil.which("wrk") is None:
        if os.environ.get("BASTION_REQUIRE_WRK"):
            pytest.fail("BASTION_REQUIRE_WRK is set but wrk is not installed")
        pytest.skip("wrk is not installed (scripts/ensure-wrk installs it)")
    code, out, err = run([sys.executable, "-m", f"bench.{smoke.module}", "--smoke", *smoke.args])
    output = f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
    assert code == 0, f"bench.{smoke.module} exited {code}\n{output}"
    assert re.search(smoke.report, out), f"no {smoke.report!r} in the report\n{output}"
    if smoke.postgres_report and os.environ.get("BASTION_TEST_POSTGRES_URL"):
        assert re.search(smoke.postgres_report, out), f"no {smoke.postgres_report!r}\n{output}"
