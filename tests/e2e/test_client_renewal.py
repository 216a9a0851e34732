"""Long sessions with the client (S5, S9): silent renewal of short-lived tokens, one renewal
after a refused token, step-up asking only the second factor, and two processes renewing
from one cache at the same moment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select

import bastion
from bastion.client import SignInRequired, StepUpRequired
from bastion.store.schema import refresh_tokens
from tests.client.players import Player
from tests.support.audit_log import events_of
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess


def events(t: Org, kind: str) -> int:
    return len(events_of(t, kind))


def test_tokens_that_expire_every_second_are_renewed_silently(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(server, access_token_lifetime=1)
    player = Player(t)
    conn = bastion.connect(
        server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    services = ["directory", "sites", "chat"]
    commands = {"directory": "Get-User", "sites": "Get-Site", "chat": "Get-MeetingPolicy"}
    deadline = time.monotonic() + 2.5
    done = 0
    while time.monotonic() < deadline:
        service = services[done % len(services)]
        conn.invoke(service, commands[service])
        done += 1
    assert done > 20
    assert player.submitted == ["password", "code"] and len(player.opened) == 1
    assert player.asked == [] and events(t, "token.refresh_reuse") == 0


def test_a_refused_token_is_renewed_once_and_the_command_goes_through(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(server, access_token_lifetime=60)
    player = Player(t)
    conn = bastion.connect(
        server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    conn.directory.get_user()
    assert conn.cache is not None
    before = conn.cache.load().refresh_token
    server.advance(120)  # the cached token looks fresh here, but the service finds it expired
    assert conn.directory.get_user(identity=t.admin.username) is not None
    assert conn.cache.load().refresh_token != before  # renewed, and rotated
    assert len(player.opened) == 1


def test_a_sensitive_command_asks_only_the_second_factor_once(t: Org, tmp_path: Path) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    conn.directory.new_group(name="to-remove")
    conn.directory.new_group(name="to-remove-too")
    t.server.advance(11 * 60)  # the second factor is now older than the 10-minute window
    removed = conn.directory.remove_group(identity="to-remove")
    assert removed["name"] == "to-remove"
    assert player.submitted == ["password", "code", "code"]  # no password the second time
    assert "max_age=600" in player.opened[-1] and "acr_values=" in player.opened[-1]
    # The step-up holds for the other services and for the next sensitive command.
    conn.directory.remove_group(identity="to-remove-too")
    conn.sites.get_site()
    assert player.submitted == ["password", "code", "code"] and len(player.opened) == 2


def test_a_step_up_in_the_terminal_asks_only_the_second_factor(t: Org, tmp_path: Path) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="terminal", prompt=player, config_dir=tmp_path
    )
    assert conn.cache is not None
    first = conn.cache.load()
    # the token response's auth_session is kept, sealed with the refresh token
    assert first.auth_session and first.refresh_token
    sealed = conn.cache.path.read_bytes()
    assert first.auth_session.encode() not in sealed
    assert first.refresh_token.encode() not in sealed
    conn.directory.new_group(name="old")
    t.server.advance(11 * 60)  # the second factor is now older than the 10-minute window
    assert conn.directory.remove_group(identity="old")["name"] == "old"
    # one one-time code, no user name, no password, never a browser
    assert [q.split(" ")[0] for q in player.asked] == ["User", "Password", "One-time", "One-time"]
    assert player.opened == [] and player.submitted == []
    stepped = conn.cache.load()
    assert stepped.account is not None and first.account is not None
    assert stepped.account.sub == first.account.sub
    assert stepped.account.auth_time >= first.account.auth_time + 11 * 60
    assert stepped.auth_session and stepped.auth_session != first.auth_session
    assert events(t, "sign_in.step_up") == 1 and events(t, "sign_in.success") == 1
    # the stepped-up sign-in holds for the next sensitive command and for other services
    conn.directory.new_group(name="new")
    conn.directory.remove_group(identity="new")
    conn.sites.get_site()
    assert len(player.asked) == 4


def test_a_terminal_step_up_whose_auth_session_is_gone_asks_the_password(
    t: Org, tmp_path: Path
) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="terminal", prompt=player, config_dir=tmp_path
    )
    assert conn.cache is not None
    with conn.cache.transaction() as state:  # a value the authority never issued
        state.auth_session = "x" * 43
    conn.directory.new_group(name="old")
    t.server.advance(11 * 60)
    assert conn.directory.remove_group(identity="old")["name"] == "old"
    assert [q.split(" ")[0] for q in player.asked] == ["User", "Password", "One-time"] * 2


def test_a_device_step_up_asks_only_the_second_factor(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A device code asked with max_age and acr_values, approved in a browser that is still
    signed in: the approval page asks the second factor again, not the password."""
    t = make_tenant(server, device_poll_interval=1)
    player = Player(t)
    conn = bastion.connect(
        server.base_url, t.name, method="device", prompt=player, config_dir=tmp_path
    )
    conn.directory.new_group(name="kept")
    assert conn.cache is not None
    before = conn.cache.load().account
    server.advance(11 * 60)
    assert conn.directory.remove_group(identity="kept")["name"] == "kept"
    assert player.submitted == ["password", "code", "code"]  # no password the second time
    shown = [m for m in player.shown if "enter the code" in m]
    assert len(shown) == 2 and "Confirm with your second factor to run" in shown[1]
    after = conn.cache.load().account
    assert before is not None and after is not None
    assert after.auth_time >= before.auth_time + 11 * 60
    assert after.acr == "urn:bastion:acr:2fa"
    assert events(t, "sign_in.step_up") == 1


def test_a_step_up_with_no_one_to_answer_stops_clearly(t: Org, tmp_path: Path) -> None:
    bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=Player(t), config_dir=tmp_path
    )
    script = bastion.connect(t.server.base_url, t.name, interactive=False, config_dir=tmp_path)
    script.directory.new_group(name="kept")
    t.server.advance(11 * 60)
    started = time.monotonic()
    with pytest.raises(StepUpRequired) as caught:
        script.directory.remove_group(identity="kept")
    assert time.monotonic() - started < 2
    assert caught.value.exit_code == 4 and caught.value.max_age == 600
    assert isinstance(caught.value, SignInRequired)


SCRIPT = """
import sys, time
from pathlib import Path
import bastion

url, tenant, config, ready, go, rounds = sys.argv[1:7]
conn = bastion.connect(url, tenant, interactive=False, config_dir=config)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
for i in range(int(rounds)):
    service, command = [("directory", "Get-User"), ("sites", "Get-Site"),
                        ("chat", "Get-MeetingPolicy")][i % 3]
    conn.invoke(service, command)
    time.sleep(0.1)
print("ok")
"""


def refresh_tokens_of(t: Org) -> int:
    with t.server.authority.store.begin() as conn:
        return len(
            conn.execute(
                select(refresh_tokens.c.token_hash).where(refresh_tokens.c.tenant_id == t.tenant.id)
            ).all()
        )


def run_pair(t: Org, tmp_path: Path, config: Path, rounds: int) -> None:
    """Two processes that read the cache, then run ``rounds`` commands at the same moment."""
    script = tmp_path / "renew.py"
    script.write_text(textwrap.dedent(SCRIPT))
    go = tmp_path / f"go-{rounds}"
    ready = [tmp_path / f"ready-{rounds}-{n}" for n in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), t.server.base_url, t.name, str(config), str(r),
             str(go), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert out.strip() == "ok"


def test_two_processes_renew_from_one_cache_at_once(server: ServerProcess, tmp_path: Path) -> None:
    t = make_tenant(server, access_token_lifetime=1)
    config = tmp_path / "config"
    bastion.connect(server.base_url, t.name, method="browser", prompt=Player(t), config_dir=config)
    time.sleep(1.1)  # the cached token has expired for both
    before = refresh_tokens_of(t)
    run_pair(t, tmp_path, config, rounds=1)
    # one renewed under the lock; the other found its fresh token and used it
    assert refresh_tokens_of(t) == before + 1
    run_pair(t, tmp_path, config, rounds=12)  # then many renewals, interleaved
    assert events(t, "token.refresh_reuse") == 0  # never the same refresh token twice
