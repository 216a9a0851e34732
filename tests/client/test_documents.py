"""Public documents kept on disk: freshness, ETag revalidation, the issuer check on every
use; and TLS with a CA bundle."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bastion.client import discovery
from bastion.client.documents import DEFAULT_TTL, DocumentCache
from bastion.client.errors import ConfigError, IssuerMismatch, NetworkError
from bastion.client.http import Http, Options
from bastion.server.tls import ensure_local_tls


class Origin:
    """Serves one JSON document, with an ETag and Cache-Control chosen by the test."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.body: dict[str, object] = {"commands": []}
        self.etag: str | None = None
        self.cache_control: str | None = None
        self.requests: list[str | None] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = self.headers.get("If-None-Match")
                origin.requests.append(seen)
                if origin.etag is not None and seen == origin.etag:
                    self.send_response(304)
                    self.send_header("ETag", origin.etag)
                    self.end_headers()
                    return
                body = json.dumps(origin.body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if origin.etag is not None:
                    self.send_header("ETag", origin.etag)
                if origin.cache_control is not None:
                    self.send_header("Cache-Control", origin.cache_control)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    found = Origin()
    yield found
    found.close()


def expire(cache: DocumentCache, url: str) -> None:
    entry = cache._read(url)
    assert entry is not None
    entry["fresh_until"] = time.time() - 1
    cache._write(url, entry)


def test_fresh_documents_cost_no_request(origin: Origin, tmp_path: Path) -> None:
    cache = DocumentCache(tmp_path)
    http = Http(Options())
    url = f"{origin.base}/api/mail/commands"
    first = cache.get(http, url, what="the catalog")
    second = DocumentCache(tmp_path).get(http, url, what="the catalog")
    assert first.body == second.body and len(origin.requests) == 1
    entry = cache._read(url)
    assert entry is not None
    assert entry["fresh_until"] - entry["fetched_at"] == pytest.approx(DEFAULT_TTL)


def test_a_stale_document_is_revalidated_with_its_etag(origin: Origin, tmp_path: Path) -> None:
    origin.etag = '"v1"'
    cache = DocumentCache(tmp_path)
    http = Http(Options())
    url = f"{origin.base}/api/mail/commands"
    assert cache.get(http, url, what="x").version == '"v1"'
    expire(cache, url)
    origin.body = {"changed": True}  # not sent: the server answers 304
    assert cache.get(http, url, what="x").body == {"commands": []}
    assert origin.requests == [None, '"v1"']
    origin.etag = '"v2"'
    expire(cache, url)
    assert cache.get(http, url, what="x").body == {"changed": True}


def test_max_age_sets_the_freshness(origin: Origin, tmp_path: Path) -> None:
    origin.cache_control = "public, max-age=300"
    cache = DocumentCache(tmp_path)
    url = f"{origin.base}/x"
    cache.get(Http(Options()), url, what="x")
    entry = cache._read(url)
    assert entry is not None and entry["fresh_until"] - entry["fetched_at"] == pytest.approx(300)


def test_a_discovery_document_on_disk_is_checked_again(origin: Origin, tmp_path: Path) -> None:
    """T9 holds for what is read back from disk, not only for what was fetched."""
    issuer = f"{origin.base}/t/contoso"
    origin.body = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "device_authorization_endpoint": f"{issuer}/oauth2/devicecode",
        "bastion_services": {"mail": f"{origin.base}/api/mail"},
    }
    cache = DocumentCache(tmp_path)
    http = Http(Options())
    assert discovery.load(http, cache, issuer).services == {"mail": f"{origin.base}/api/mail"}
    url = f"{issuer}/.well-known/openid-configuration"
    entry = cache._read(url)
    assert entry is not None
    entry["body"]["issuer"] = f"{origin.base}/t/other"
    cache._write(url, entry)
    with pytest.raises(IssuerMismatch):
        discovery.load(http, cache, issuer)
    origin.body = {**origin.body, "issuer": f"{origin.base}/t/other"}
    with pytest.raises(IssuerMismatch):
        discovery.load(http, cache, issuer, refresh=True)


def test_a_ca_bundle_is_used_for_tls(tmp_path: Path) -> None:
    local = ensure_local_tls(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(local.cert_file, local.key_file)
    origin = Origin(tls=context)
    try:
        url = f"{origin.base}/x"
        trusted = Http(Options(ca_bundle=str(local.ca_file), retries=0))
        assert trusted.request("GET", url).status_code == 200
        with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            Http(Options(retries=0)).request("GET", url)
        assert "ca_bundle" in str(caught.value)
    finally:
        origin.close()
    with pytest.raises(ConfigError, match="CA bundle"):
        Http(Options(ca_bundle=str(tmp_path / "missing.pem"))).request("GET", url)
