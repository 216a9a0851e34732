"""``bastion serve``: run the server (uvicorn); :func:`run_server` also serves the demo."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.cli.operator.storage import StorageFlags, add_storage_options
from bastion.errors import ConfigError, UsageError


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the authority and services over HTTP(S)")
    add_server_options(serve, default_port=8700)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain")
    serve.add_argument("--tls-key", type=Path, help="PEM private key")
    serve.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain HTTP on a non-loopback address (behind a TLS proxy)",
    )
    serve.add_argument(
        "--base-url",
        metavar="URL",
        help="the public base URL (https://host[:port][/path]); issuers, discovery and "
        "audiences are built from it and requests naming another host get 421; required "
        "off loopback (also BASTION_BASE_URL)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="believe X-Forwarded-For from this address (repeatable)",
    )
    serve.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME",
        help="serve only this service, without the authority (repeatable, or a comma list; "
        "needs --authority; also BASTION_SERVICES)",
    )
    serve.add_argument(
        "--authority",
        metavar="URL",
        help="with --service: the public base URL of the authority whose tokens are accepted, "
        "checked with the keys it publishes (also BASTION_AUTHORITY_URL)",
    )
    serve.set_defaults(handler=lambda args: run(ServeOptions.from_args(args)))


def add_server_options(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument("--clock-offset-file", type=Path, help=argparse.SUPPRESS)
    add_storage_options(parser)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: TLS 1.2 cipher suites offered (OpenSSL syntax): forward secrecy and AEAD only
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


#: How long an idle connection stays open. uvicorn's 5 s default is the device grant's
#: polling interval: a client polling every 5 s then sends its request just as the server
#: closes the connection, and over TLS waits out the 30 s TLS shutdown for an answer that
#: never comes. Longer than the slowest polling a tenant may set plus a ``slow_down`` step,
#: and than the 60 s idle timeout of common proxies, so the client is the side that closes.
KEEP_ALIVE_SECONDS = 75


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    workers: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: str = "INFO"


def run_server(settings: Any, listen: Listen) -> int:
    """Apply migrations once, then hand over to uvicorn with settings in the environment."""
    import uvicorn

    from bastion import data_files
    from bastion.authority.context import Authority
    from bastion.web import logging as web_logging

    # Everything the server creates from here on (the database, its WAL and shared-memory
    # files, keys) is readable by the service user alone (docs/decisions/0023).
    data_files.restrict_umask()
    web_logging.configure(listen.log_level)  # so start-up warnings are JSON lines too
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per migration step
    Authority.open(settings).close()  # migrations, master key, file modes
    os.environ["BASTION_DATA_DIR"] = str(settings.data_dir)
    os.environ["BASTION_ATTEMPT_LIMIT"] = str(settings.attempt_limit)
    os.environ["BASTION_LOCKOUT_SECONDS"] = str(settings.lockout_seconds)
    if settings.database_url:
        os.environ["BASTION_DATABASE_URL"] = settings.database_url
    if settings.master_key_file:
        os.environ["BASTION_MASTER_KEY_FILE"] = str(settings.master_key_file)
    if settings.clock_offset_file:
        os.environ["BASTION_CLOCK_OFFSET_FILE"] = str(settings.clock_offset_file)
    os.environ["BASTION_ARGON2_MEMORY_KIB"] = str(settings.argon2.memory_kib)
    os.environ["BASTION_ARGON2_TIME_COST"] = str(settings.argon2.time_cost)
    os.environ["BASTION_ARGON2_PARALLELISM"] = str(settings.argon2.parallelism)
    if settings.base_url:
        os.environ["BASTION_BASE_URL"] = settings.base_url
    if settings.trusted_proxies:
        os.environ["BASTION_TRUSTED_PROXIES"] = ",".join(settings.trusted_proxies)
    if settings.service_urls:
        os.environ["BASTION_SERVICE_URLS"] = ",".join(
            f"{name}={url}" for name, url in settings.service_urls.items()
        )
    if settings.standalone and settings.authority_url:
        os.environ["BASTION_SERVICES"] = ",".join(settings.services)
        os.environ["BASTION_AUTHORITY_URL"] = settings.authority_url
    os.environ["BASTION_HTTPS"] = "1" if listen.tls_cert else "0"
    os.environ["BASTION_LOG_LEVEL"] = listen.log_level
    uvicorn.run(
        "bastion.web.factory:create",
        factory=True,
        host=listen.host,
        port=listen.port,
        workers=listen.workers,
        ssl_certfile=str(listen.tls_cert) if listen.tls_cert else None,
        ssl_keyfile=str(listen.tls_key) if listen.tls_key else None,
        # X1: only ECDHE with an AEAD cipher, which exist from TLS 1.2 on, so no older
        # version and no CBC suite can be negotiated, whatever the defaults of the platform
        # or of uvicorn (TLS 1.3 suites are configured apart from this list and stay on)
        ssl_ciphers=TLS_CIPHERS,
        # X3: forwarded headers are believed only from configured proxies.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        server_header=False,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return 0


@dataclass(frozen=True)
class ServeOptions:
    listen: Listen
    insecure_http: bool
    base_url: str | None
    trusted_proxies: tuple[str, ...]
    services: tuple[str, ...]
    authority: str | None
    clock_offset_file: Path | None
    storage: StorageFlags

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeOptions:
        return cls(
            listen=Listen(
                args.host, args.port, args.workers, args.tls_cert, args.tls_key, args.log_level
            ),
            insecure_http=args.insecure_http,
            base_url=args.base_url,
            trusted_proxies=tuple(args.trusted_proxy),
            services=tuple(args.service),
            authority=args.authority,
            clock_offset_file=args.clock_offset_file,
            storage=StorageFlags.from_args(args),
        )


def run(options: ServeOptions) -> int:
    from bastion.config import parse_service_list

    listen = options.listen
    if bool(listen.tls_cert) != bool(listen.tls_key):
        raise UsageError("--tls-cert and --tls-key go together.")
    if not listen.tls_cert and not is_loopback(listen.host) and not options.insecure_http:
        raise UsageError(
            f"refusing plain HTTP on {listen.host}, which is not a loopback address.",
            hint="Give --tls-cert and --tls-key, or --insecure-http behind a TLS proxy.",
        )
    if listen.workers < 1:
        raise UsageError("--workers must be at least 1.")
    settings = options.storage.settings(
        clock_offset_file=options.clock_offset_file,
        trusted_proxies=options.trusted_proxies or None,
        services=parse_service_list(",".join(options.services)) or None,
        authority_url=options.authority.rstrip("/") if options.authority else None,
        base_url=options.base_url.rstrip("/") if options.base_url else None,
    )
    if not is_loopback(listen.host) and not settings.base_url:
        # Without it, names would come from each request's Host header, which anyone
        # reaching the address chooses (issuers, discovery, audiences).
        raise ConfigError(
            f"serving on {listen.host}, which is not a loopback address, needs the public "
            "base URL.",
            hint="Give --base-url https://HOST (or set BASTION_BASE_URL).",
        )
    if settings.standalone and not settings.resolved_master_key_file.exists():
        # Cursors and audit checkpoints are sealed with the authority's master key: a new
        # one here would make both unreadable to the other process.
        raise ConfigError(
            f"no master key at {settings.resolved_master_key_file}.",
            hint="A service served alone shares the authority's data directory or "
            "BASTION_MASTER_KEY_FILE, and its database.",
        )
    return run_server(settings, listen)
