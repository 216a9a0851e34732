"""What the CLI's tests share: a signed-in profile written through the library, and the
``bastion`` command run as a separate process on that configuration directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bastion
from bastion.client import add_profile
from tests.client.players import Player
from tests.support.flows import Org, Person


@dataclass
class Cli:
    """``bastion`` in its own process, with its own configuration directory."""

    config_dir: Path
    extra_env: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.update(
            BASTION_CONFIG_DIR=str(self.config_dir),
            BASTION_KEY_STORAGE="file",
            PYTHONUNBUFFERED="1",
            COLUMNS="200",
        )
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        env.update(self.extra_env or {})
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bastion", *args]

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, (args, result.returncode, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json"))


def sign_in(
    t: Org,
    config_dir: Path,
    *,
    profile: str = "test",
    user: Person | None = None,
    **options: Any,
) -> Cli:
    """A profile for ``t`` whose cache holds a sign-in of ``user`` (the admin by default),
    made by the library in this process with a test player at the keyboard."""
    add_profile(
        profile, t.server.base_url, t.name, config_dir=config_dir, replace_existing=True, **options
    )
    player = Player(t, user)
    before = os.environ.get("BASTION_KEY_STORAGE")
    os.environ["BASTION_KEY_STORAGE"] = "file"  # where the CLI's processes look for it
    try:
        conn = bastion.connect(
            profile=profile, method="browser", prompt=player, config_dir=config_dir
        )
        conn.close()
    finally:
        player.close()
        if before is None:
            del os.environ["BASTION_KEY_STORAGE"]
        else:
            os.environ["BASTION_KEY_STORAGE"] = before
    return Cli(config_dir)
