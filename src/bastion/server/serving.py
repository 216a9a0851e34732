"""Running the server: migrations once, then uvicorn with its workers (``bastion serve``
and ``bastion demo``)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    from bastion.core import data_files
    from bastion.server import json_logs as web_logging
    from bastion.server.context import ServerContext

    # Everything the server creates from here on (the database, its WAL and shared-memory
    # files, keys) is readable by the service user alone (docs/decisions/0023).
    data_files.restrict_umask()
    web_logging.configure(listen.log_level)  # so start-up warnings are JSON lines too
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per migration step
    ServerContext.open(settings).close()  # migrations, master key, file modes
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
        "bastion.server.factory:create",
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
