"""``bastion demo``: idempotent, one user per built-in role, credentials for scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bastion.server.bootstrap import ROLE_NAMES


def demo_json(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "demo",
            "--setup-only",
            "--json",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[0])


def test_demo_is_idempotent_and_covers_every_role(tmp_path: Path) -> None:
    first = demo_json(tmp_path)
    second = demo_json(tmp_path)
    assert first == second
    assert first["tenant"] == "contoso" and first["client_id"] == "bastion-cli"
    assert first["issuer"] == "http://127.0.0.1:8700/t/contoso"
    roles = {role for user in first["users"] for role in user["roles"]}
    assert roles == set(ROLE_NAMES)
    by_mfa = {u["mfa"] for u in first["users"]}
    assert by_mfa == {"enforced", "enabled", "disabled"}
    # A8: a role holder always signs in with two factors, so the password-only user has none
    assert [u["roles"] for u in first["users"] if u["mfa"] == "disabled"] == [[]]
    for user in first["users"]:
        assert ("totp_secret" in user) == (user["username"] not in ("pat@contoso", "sam@contoso"))
    mode = (tmp_path / "demo-credentials.json").stat().st_mode & 0o777
    assert mode == 0o600
