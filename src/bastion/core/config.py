"""Where Bastion keeps its data, and the settings it refuses to start without.

Settings come from command-line options first, then environment variables:

``BASTION_DATA_DIR``         data directory (default ``$XDG_DATA_HOME/bastion``)
``BASTION_DATABASE_URL``     SQLAlchemy URL; PostgreSQL as ``postgresql+psycopg://...``
``BASTION_MASTER_KEY_FILE``  the key that encrypts secrets at rest (default in the data dir)
``BASTION_BASE_URL``         the public base URL: issuers, discovery and audiences are built
                             from it, and a request naming another host is answered 421;
                             required off loopback (without it, only loopback names on the
                             bound port are answered)
``BASTION_ATTEMPT_LIMIT``    consecutive failures per account and authenticator after which
                             every further attempt waits ``BASTION_LOCKOUT_SECONDS`` (1-100)
``BASTION_LOCKOUT_SECONDS``  how long that block lasts before it lifts by itself (60-86400)
``BASTION_ARGON2_MEMORY_KIB`` / ``BASTION_ARGON2_TIME_COST`` / ``BASTION_ARGON2_PARALLELISM``
                             Argon2id cost (never below OWASP's m=19456, t=2, p=1)
``BASTION_SERVICE_URLS``     services that run in another process, as
                             ``mail=https://mail.example.org,sites=...``: the authority
                             issues their tokens for ``{url}/api/{service}`` and lists that in
                             discovery's ``bastion_services`` (docs/decisions/0010)
``BASTION_SERVICES``         with ``BASTION_AUTHORITY_URL``: serve only these services
                             (``mail,sites``), alone, trusting the tokens of the authority at
                             that URL through its published keys (``bastion serve --service``)
``BASTION_AUTHORITY_URL``    the authority's public base URL, its issuers being ``{url}/t/{tenant}``

A service URL or authority URL is ``http(s)://host[:port][/path]``; plain ``http`` only on a
loopback address, since bearer tokens travel to it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bastion.core.errors import ConfigError

#: NIST SP 800-63B-4 section 3.2.2 caps consecutive failures at 100.
MAX_ATTEMPT_LIMIT = 100
#: the bounds of the account-level block (decision 0019)
MIN_LOCKOUT_SECONDS = 60
MAX_LOCKOUT_SECONDS = 86400


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
    #: consecutive failures per account and authenticator after which every attempt waits
    #: ``lockout_seconds`` (A3, decision 0019)
    attempt_limit: int = 10
    #: how long an account-level block lasts; it lifts by itself
    lockout_seconds: int = 900
    #: a file whose number of seconds is added to the clock (tests only)
    clock_offset_file: Path | None = None
    #: addresses whose Forwarded / X-Forwarded-* headers are believed
    trusted_proxies: tuple[str, ...] = ()
    #: the public base URL; without it, from each request's Host, which must then be a
    #: loopback name on the bound port (``bastion.http.request_limits``)
    base_url: str | None = None
    #: services that run elsewhere: name -> base URL whose ``/api/{name}`` is the audience
    service_urls: dict[str, str] = field(default_factory=dict)
    #: a standalone service process: the services it serves (empty: everything, combined)
    services: tuple[str, ...] = ()
    #: a standalone service process: the base URL of the authority whose tokens it accepts
    authority_url: str | None = None

    def check(self, service_names: Collection[str] | None = None) -> None:
        """Refuse settings that cannot work. ``service_names``: the server's services, which
        ``--service`` and ``BASTION_SERVICE_URLS`` must name (the core does not know them)."""
        if not 1 <= self.attempt_limit <= MAX_ATTEMPT_LIMIT:
            raise ConfigError(
                f"attempt limit {self.attempt_limit} is outside 1..{MAX_ATTEMPT_LIMIT}.",
                hint="NIST SP 800-63B-4 allows at most 100 consecutive failures.",
            )
        if not MIN_LOCKOUT_SECONDS <= self.lockout_seconds <= MAX_LOCKOUT_SECONDS:
            raise ConfigError(
                f"lockout of {self.lockout_seconds} s is outside "
                f"{MIN_LOCKOUT_SECONDS}..{MAX_LOCKOUT_SECONDS}.",
                hint="A block must lift by itself within a day (decision 0019).",
            )
        self.argon2.check()
        for name, url in self.service_urls.items():
            _check_service(name, "BASTION_SERVICE_URLS", service_names)
            check_url(url, f"the URL of service '{name}'")
        for name in self.services:
            _check_service(name, "--service", service_names)
        if bool(self.services) != bool(self.authority_url):
            raise ConfigError(
                "a service served alone needs the URL of its authority, and the reverse.",
                hint="Give --service NAME and --authority URL together.",
            )
        if self.authority_url:
            check_url(self.authority_url, "the authority URL")
        if self.base_url:
            check_url(self.base_url, "the base URL")

    @property
    def standalone(self) -> bool:
        """This process serves some services alone, against a remote authority."""
        return bool(self.services)

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
        if env.get("BASTION_LOCKOUT_SECONDS"):
            values["lockout_seconds"] = int(env["BASTION_LOCKOUT_SECONDS"])
        if env.get("BASTION_BASE_URL"):
            values["base_url"] = env["BASTION_BASE_URL"].rstrip("/")
        if env.get("BASTION_TRUSTED_PROXIES"):
            values["trusted_proxies"] = tuple(
                p.strip() for p in env["BASTION_TRUSTED_PROXIES"].split(",") if p.strip()
            )
        if env.get("BASTION_SERVICE_URLS"):
            values["service_urls"] = parse_service_urls(env["BASTION_SERVICE_URLS"])
        if env.get("BASTION_SERVICES"):
            values["services"] = parse_service_list(env["BASTION_SERVICES"])
        if env.get("BASTION_AUTHORITY_URL"):
            values["authority_url"] = env["BASTION_AUTHORITY_URL"].rstrip("/")
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


def parse_service_list(text: str) -> tuple[str, ...]:
    """``mail,sites`` (or several such) as a tuple of distinct names, in order."""
    names: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if name and name not in names:
            names.append(name)
    return tuple(names)


def parse_service_urls(text: str) -> dict[str, str]:
    """``mail=https://mail.example.org,sites=https://sites.example.org``."""
    urls: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, url = part.partition("=")
        name = name.strip().lower()
        if not sep or not name or not url.strip():
            raise ConfigError(
                f"BASTION_SERVICE_URLS: '{part.strip()}' is not NAME=URL.",
                hint="For example BASTION_SERVICE_URLS=mail=https://mail.example.org",
            )
        if name in urls:
            raise ConfigError(f"BASTION_SERVICE_URLS names '{name}' twice.")
        urls[name] = url.strip().rstrip("/")
    return urls


def _check_service(name: str, where: str, names: Collection[str] | None) -> None:
    if names is not None and name not in names:
        raise ConfigError(
            f"{where}: there is no service '{name}'.", hint=f"Services: {', '.join(names)}."
        )


def check_url(url: str, what: str) -> None:
    """An absolute http(s) base URL without query or fragment; https unless on loopback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ConfigError(f"{what} '{url}' is not a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise ConfigError(
            f"{what} '{url}' is not an absolute http(s) URL without query or fragment.",
            hint="For example https://mail.example.org",
        )
    if url.endswith("/"):
        raise ConfigError(f"{what} '{url}' must not end with '/'.")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"{what} '{url}' is plain HTTP on a host that is not a loopback address.",
            hint="Bearer tokens travel to it: use https.",
        )


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1, also as ``[::1]``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def fetchable(url: str) -> bool:
    """A URL the server may fetch from: ``https`` with a host, or plain ``http`` to a
    loopback address; never with credentials in it."""
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname)
