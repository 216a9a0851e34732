"""Public documents kept on disk: the discovery document and the service catalogs.

Each is stored in ``{config_dir}/cache/`` under a hash of its URL with the time it stays
fresh, its ``ETag`` and a SHA-256 of its content (its version). While fresh it is used with
no request at all. Freshness is the server's ``Cache-Control: max-age`` when it sends one,
else :data:`DEFAULT_TTL`. Once stale it is fetched again, conditionally
(``If-None-Match``) when the server gave an ``ETag``, so an unchanged document costs a
``304`` and no body. These documents hold no secret; they are still written 0600.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.client import files
from bastion.client.errors import error_from_problem
from bastion.client.http import Http, require_json

DEFAULT_TTL = 24 * 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True)
class Document:
    url: str
    body: dict[str, Any]
    version: str
    fetched_at: float


class DocumentCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, url: str) -> Path:
        return self.directory / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def _read(self, url: str) -> dict[str, Any] | None:
        raw = files.read_bytes(self._path(url))
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("url") != url:
            return None
        return entry

    def kept(self, url: str, max_age: float) -> Document | None:
        """The document at ``url`` as last stored, if fetched or revalidated less than
        ``max_age`` seconds ago, whatever the server said of its freshness; no request."""
        entry = self._read(url)
        if entry is None or time.time() - float(entry.get("fetched_at", 0)) > max_age:
            return None
        return _document(entry)

    def forget(self, url: str) -> None:
        files.remove(self._path(url))

    def get(
        self,
        http: Http,
        url: str,
        *,
        what: str,
        check: Callable[[dict[str, Any]], None] | None = None,
        refresh: bool = False,
    ) -> Document:
        """The document at ``url``: from disk while fresh, else from the server.
        ``check`` refuses a document (it raises) before it is stored or used."""
        now = time.time()
        entry = self._read(url)
        if entry is not None and not refresh and now < float(entry.get("fresh_until", 0)):
            return _document(entry)
        headers = {"Accept": "application/json"}
        if entry is not None and entry.get("etag"):
            headers["If-None-Match"] = str(entry["etag"])
        response = http.request("GET", url, headers=headers)
        if response.status_code == 304 and entry is not None:
            entry["fresh_until"] = now + _ttl(response.headers.get("cache-control"))
            entry["fetched_at"] = now
            self._write(url, entry)
            return _document(entry)
        if response.status_code != 200:
            body = require_json(response, what)
            raise error_from_problem(response.status_code, body, f"{what} is not available")
        body = require_json(response, what)
        if check is not None:
            check(body)
        entry = {
            "url": url,
            "fetched_at": now,
            "fresh_until": now + _ttl(response.headers.get("cache-control")),
            "etag": response.headers.get("etag"),
            "version": hashlib.sha256(response.content).hexdigest()[:16],
            "body": body,
        }
        self._write(url, entry)
        return _document(entry)

    def _write(self, url: str, entry: dict[str, Any]) -> None:
        files.write_private(self._path(url), json.dumps(entry).encode())


def _ttl(cache_control: str | None) -> float:
    if cache_control:
        if "no-store" in cache_control or "no-cache" in cache_control:
            return 0.0
        match = _MAX_AGE.search(cache_control)
        if match:
            return float(match.group(1))
    return DEFAULT_TTL


def _document(entry: dict[str, Any]) -> Document:
    return Document(
        url=str(entry["url"]),
        body=dict(entry["body"]),
        version=str(entry.get("etag") or entry.get("version") or ""),
        fetched_at=float(entry.get("fetched_at", 0)),
    )
