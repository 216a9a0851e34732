"""``bastion serve``: run the server (uvicorn); :func:`run_server` also serves the demo."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.cli.operator.storage import StorageFlags, add_storage_options
from bastion.core.config import is_loopback_host
from bastion.core.errors import ConfigError, UsageError
from bastion.server.serving import Listen, run_server


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
    from bastion.core.config import parse_service_list
    from bastion.server.context import SERVICE_NAMES

    listen = options.listen
    if bool(listen.tls_cert) != bool(listen.tls_key):
        raise UsageError("--tls-cert and --tls-key go together.")
    if not listen.tls_cert and not is_loopback_host(listen.host) and not options.insecure_http:
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
    settings.check(service_names=SERVICE_NAMES)
    if not is_loopback_host(listen.host) and not settings.base_url:
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
