"""Where Bastion keeps its data, and the settings it refuses to start without.

Settings come from command-line options first, then environment variables:

``BASTION_DATA_DIR``         data directory (default ``$XDG_DATA_HOME/bastion``)
``BASTION_DATABASE_URL``     SQLAlchemy URL; PostgreSQL as ``postgresql+psycopg://...``
``BASTION_MASTER_KEY_FILE``  the key that encrypts secrets at rest (default in the data dir)
``BASTION_BASE_URL``         the public base URL, when behind a proxy
``BASTION_ATTEMPT_LIMIT``    consecutive failures before an authenticator locks (1-100)
``BASTION_ARGON2_MEMORY_KIB`` / ``BASTION_ARGON2_TIME_COST`` / ``BASTION_ARGON2_PARALLELISM``
                             Argon2id cost (never below OWASP's m=19456, t=2, p=1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import ConfigError

#: NIST SP 800-63B-4 section 3.2.2 caps consecutive failures at 100.
MAX_ATTEMPT_LIMIT = 100


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "bastion"


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. The defaults are OWASP's minimum (m = 19 MiB, t = 2, p = 1)."""

    memory_kib: int = 19 * 1024
    time_cost: int = 2
    parallelism: int = 1

    def check(self) -> None:
        if self.memory_kib < 19 * 1024 or self.time_cost < 2 or self.parallelism < 1:
            raise ConfigError(
                "Argon2id parameters below OWASP's minimum (m=19456 KiB, t=2, p=1).",
                hint="Raise --argon2-memory/--argon2-time, never lower them.",
            )


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    master_key_file: Path | None = None
    argon2: Argon2Params = field(default_factory=Argon2Params)
    #: consecutive failures per account and authenticator before it is locked (A3)
    attempt_limit: int = 10
    #: a file whose number of seconds is added to the clock (tests only)
    clock_offset_file: Path | None = None
    #: addresses whose Forwarded / X-Forwarded-* headers are believed
    trusted_proxies: tuple[str, ...] = ()
    #: the public base URL; by default taken from each request's Host
    base_url: str | None = None

    def check(self) -> None:
        if not 1 <= self.attempt_limit <= MAX_ATTEMPT_LIMIT:
            raise ConfigError(
                f"attempt limit {self.attempt_limit} is outside 1..{MAX_ATTEMPT_LIMIT}.",
                hint="NIST SP 800-63B-4 allows at most 100 consecutive failures.",
            )
        self.argon2.check()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'bastion.db'}"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if env.get("BASTION_DATA_DIR"):
            values["data_dir"] = Path(env["BASTION_DATA_DIR"])
        if env.get("BASTION_DATABASE_URL"):
            values["database_url"] = env["BASTION_DATABASE_URL"]
        if env.get("BASTION_MASTER_KEY_FILE"):
            values["master_key_file"] = Path(env["BASTION_MASTER_KEY_FILE"])
        if env.get("BASTION_CLOCK_OFFSET_FILE"):
            values["clock_offset_file"] = Path(env["BASTION_CLOCK_OFFSET_FILE"])
        if env.get("BASTION_ATTEMPT_LIMIT"):
            values["attempt_limit"] = int(env["BASTION_ATTEMPT_LIMIT"])
        if env.get("BASTION_BASE_URL"):
            values["base_url"] = env["BASTION_BASE_URL"].rstrip("/")
        if env.get("BASTION_TRUSTED_PROXIES"):
            values["trusted_proxies"] = tuple(
                p.strip() for p in env["BASTION_TRUSTED_PROXIES"].split(",") if p.strip()
            )
        if any(env.get(f"BASTION_ARGON2_{n}") for n in ("MEMORY_KIB", "TIME_COST", "PARALLELISM")):
            values["argon2"] = Argon2Params(
                memory_kib=int(env.get("BASTION_ARGON2_MEMORY_KIB", 19 * 1024)),
                time_cost=int(env.get("BASTION_ARGON2_TIME_COST", 2)),
                parallelism=int(env.get("BASTION_ARGON2_PARALLELISM", 1)),
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings
