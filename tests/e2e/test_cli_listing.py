"""Long listings on the command line (S6): ``--all`` streams every page, ``--checkpoint``
saves how far it got, an interruption (the server killed, Ctrl-C) exits 5 with the command
that resumes, and the resumed run writes the rest: every object exactly once."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from sqlalchemy import select

from bastion.server import seed
from bastion.store.schema import mailboxes
from tests.cli.helpers import sign_in
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess, running_server


@pytest.fixture
def own_server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own: it is killed in the middle of a listing."""
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    with running_server(backend, data_dir) as proc:
        yield proc


def populated(server: ServerProcess, count: int) -> tuple[Org, set[str]]:
    t = make_tenant(server)
    store = server.authority.store
    seed.seed_population(store, t.tenant.id, domain=t.name, count=count, now=server.now())
    with store.begin() as conn:
        ids = set(
            conn.execute(select(mailboxes.c.id).where(mailboxes.c.tenant_id == t.tenant.id))
            .scalars()
            .all()
        )
    assert len(ids) == count
    return t, ids


def wait_for(checkpoint: Path, written: int, process: subprocess.Popen[Any]) -> None:
    """Until the checkpoint says at least ``written`` objects are out."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the listing ended before it could be interrupted"
        try:
            if json.loads(checkpoint.read_text())["written"] >= written:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    raise AssertionError("the listing did not get going")


def resume_command(stderr: str) -> list[str]:
    [line] = [line for line in stderr.splitlines() if "Resume with: " in line]
    words = shlex.split(line.split("Resume with: ", 1)[1])
    assert words[0] == "bastion"
    return words[1:]


def test_a_listing_interrupted_by_a_server_crash_resumes_exactly(
    own_server: ServerProcess, tmp_path: Path
) -> None:
    server = own_server
    t, expected = populated(server, 3000)
    cli = sign_in(t, tmp_path / "config")
    checkpoint = tmp_path / "mailboxes.checkpoint"
    first_file = tmp_path / "first.json"
    with open(first_file, "w") as out:
        process = subprocess.Popen(
            cli.command(
                "mail", "get-mailbox", "--checkpoint", str(checkpoint), "--page-size", "50",
                "--retries", "0", "-o", "json",
            ),
            stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env=cli.env(),
        )  # fmt: skip
        wait_for(checkpoint, 500, process)
        process.send_signal(signal.SIGSTOP)  # hold it mid-listing while the server dies
        server.process.kill()
        server.process.wait()
        process.send_signal(signal.SIGCONT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 5, stderr
    first = json.loads(first_file.read_text())  # a whole JSON array, closed on the way out
    saved = json.loads(checkpoint.read_text())
    assert 500 <= len(first) < len(expected) and saved["written"] == len(first)
    assert not saved["complete"] and saved["cursor"] and saved["command"] == "Get-Mailbox"
    assert f"stopped after {len(first):,} objects" in stderr and "Traceback" not in stderr
    resume = resume_command(stderr)
    assert resume[-2:] == ["--resume", str(checkpoint.resolve())]
    assert resume[:2] == ["--profile", "test"] and "--retries" in resume

    server.restart()
    second_run = cli.run(*resume)
    assert second_run.returncode == 0, second_run.stderr
    second = json.loads(second_run.stdout)
    ids = [m["id"] for m in first + second]
    assert len(ids) == len(set(ids)) == len(expected) and set(ids) == expected
    done = json.loads(checkpoint.read_text())
    assert done["complete"] and done["written"] == len(expected) and done["cursor"] is None
    # the order is the listing's: the resumed run starts right after the first's last object
    addresses = [m["primaryAddress"] for m in first + second]
    assert addresses == sorted(addresses)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_a_listing_cleanly_and_it_resumes(
    server: ServerProcess, tmp_path: Path, stop: signal.Signals
) -> None:
    t, expected = populated(server, 1200)
    cli = sign_in(t, tmp_path / "config")
    checkpoint = tmp_path / "cp.json"
    first_file = tmp_path / "first.jsonl"
    with open(first_file, "w") as out:
        process = subprocess.Popen(
            cli.command("mail", "get-mailbox", "--all", "--checkpoint", str(checkpoint),
                        "--page-size", "10", "-o", "jsonl", "--property", "id,primaryAddress"),
            stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env=cli.env(),
        )  # fmt: skip
        wait_for(checkpoint, 100, process)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 5, stderr
    why = "interrupted" if stop == signal.SIGINT else "terminated"
    assert why in stderr and "Traceback" not in stderr
    first = [json.loads(line) for line in first_file.read_text().splitlines()]
    assert json.loads(checkpoint.read_text())["written"] == len(first)
    assert set(first[0]) == {"id", "primaryAddress"}
    # a new listing may not overwrite a checkpoint that can still be resumed
    again = cli.run("mail", "get-mailbox", "--checkpoint", str(checkpoint))
    assert again.returncode == 2 and "not finished" in again.stderr and again.stdout == ""
    second_run = cli.run(*resume_command(stderr))
    assert second_run.returncode == 0, second_run.stderr
    second = [json.loads(line) for line in second_run.stdout.splitlines()]
    assert set(second[0]) == {"id", "primaryAddress"}  # the resumed run keeps the output
    ids = [m["id"] for m in first + second]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    # resuming a complete listing writes nothing more
    again = cli.run(*resume_command(stderr))
    assert again.returncode == 0 and again.stdout == "" and "complete" in again.stderr


def test_a_sign_in_ended_mid_listing_stops_it_and_it_resumes_after_signing_in(
    own_server: ServerProcess, tmp_path: Path
) -> None:
    server = own_server
    t, expected = populated(server, 600)
    config = tmp_path / "config"
    cli = sign_in(t, config)
    checkpoint = tmp_path / "cp.json"
    first_file = tmp_path / "first.jsonl"
    with open(first_file, "w") as out:
        process = subprocess.Popen(
            cli.command("--non-interactive", "mail", "get-mailbox", "--checkpoint",
                        str(checkpoint), "--page-size", "10", "-o", "jsonl"),
            stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env=cli.env(),
        )  # fmt: skip
        wait_for(checkpoint, 50, process)
        process.send_signal(signal.SIGSTOP)
        cli.ok("disconnect")  # from another terminal: the sign-in is revoked
        server.advance(3600)  # and the access token the listing holds has expired
        process.send_signal(signal.SIGCONT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 5, stderr
    assert "Sign in again (bastion connect), then resume: " in stderr
    first = [json.loads(line) for line in first_file.read_text().splitlines()]
    sign_in(t, config)
    resume = shlex.split(stderr.split("then resume: ", 1)[1])
    second_run = cli.run(*resume[1:])
    assert second_run.returncode == 0, second_run.stderr
    second = [json.loads(line) for line in second_run.stdout.splitlines()]
    ids = [m["id"] for m in first + second]
    assert len(ids) == len(set(ids)) and set(ids) == expected


def test_first_and_a_cursor_to_go_on(server: ServerProcess, tmp_path: Path) -> None:
    t, expected = populated(server, 25)
    cli = sign_in(t, tmp_path / "config")
    result = cli.run("mail", "get-mailbox", "--first", "10", "--property", "id")
    assert result.returncode == 0
    page = json.loads(result.stdout)
    assert len(page) == 10 and "without --first it lists every one" in result.stderr
    go_on = shlex.split(result.stderr.split("this continues: ", 1)[1].rstrip(")\n"))
    rest = cli.run(*go_on[1:], "--page-size", "4")
    assert rest.returncode == 0, rest.stderr
    ids = [m["id"] for m in page + json.loads(rest.stdout)]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    everything = cli.json("mail", "get-mailbox", "--all", "--page-size", "7")
    assert {m["id"] for m in everything} == expected
    # --checkpoint never overwrites a file that is not a checkpoint
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    refused = cli.run("mail", "get-mailbox", "--checkpoint", str(mine))
    assert refused.returncode == 2 and mine.read_text() == "mine" and refused.stdout == ""


def test_a_progress_bar_on_a_terminal_while_results_go_to_a_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    t, expected = populated(server, 300)
    cli = sign_in(t, tmp_path / "config")
    out = tmp_path / "out.json"
    command = shlex.join(cli.command("mail", "get-mailbox", "--all", "--page-size", "20"))
    child = pexpect.spawn(
        "/bin/sh", ["-c", f"{command} > {shlex.quote(str(out))}"],
        env={**cli.env(), "TERM": "xterm"}, encoding="utf-8", timeout=60,
    )  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "mail Get-Mailbox" in child.before  # the bar's label, drawn on stderr
    assert {m["id"] for m in json.loads(out.read_text())} == expected
    # with stderr not a terminal, no bar
    plain = cli.run("mail", "get-mailbox", "--all", "--page-size", "100")
    assert plain.returncode == 0 and plain.stderr == ""


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="signals")


def test_two_runs_on_one_checkpoint_the_second_stops_at_once_naming_the_first(
    server: ServerProcess, tmp_path: Path
) -> None:
    t, expected = populated(server, 1200)
    cli = sign_in(t, tmp_path / "config")
    checkpoint = tmp_path / "cp.json"
    lock = tmp_path / "cp.json.lock"
    # the first run's output is not read yet: it stays blocked part-way, holding the file
    first = subprocess.Popen(
        cli.command("mail", "get-mailbox", "--checkpoint", str(checkpoint), "--page-size", "10",
                    "-o", "jsonl"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=cli.env(),
    )  # fmt: skip
    try:
        wait_for(checkpoint, 10, first)
        second = cli.run("mail", "get-mailbox", "--resume", str(checkpoint), timeout=30)
        assert second.returncode == 1, second.stderr
        assert f"being run by process {first.pid}" in second.stderr
        assert second.stdout == "" and len(second.stderr.splitlines()) == 1
        fresh = cli.run("mail", "get-mailbox", "--checkpoint", str(checkpoint), timeout=30)
        assert fresh.returncode == 1 and str(first.pid) in fresh.stderr
    finally:
        out, err = first.communicate(timeout=120)  # read: the first run goes on to the end
    assert first.returncode == 0, err
    ids = [json.loads(line)["id"] for line in out.splitlines()]
    assert len(ids) == len(set(ids)) and set(ids) == expected  # nothing fetched twice
    # the first run is over, and its lock with it
    assert not lock.exists()
    after = cli.run("mail", "get-mailbox", "--resume", str(checkpoint))
    assert after.returncode == 0 and "complete" in after.stderr
