"""Catalogs are cacheable: a strong ETag, ``Cache-Control: no-cache`` and ``304`` answers to
``If-None-Match`` (RFC 9110 sections 8.8.3 and 13.1.2, RFC 9111 section 5.2.2.4)."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.support.server import ServerProcess


def test_a_catalog_carries_its_version_as_a_strong_etag(server: ServerProcess) -> None:
    url = f"{server.base_url}/api/directory/commands"
    first = httpx.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "no-cache"
    body = first.json()
    assert body["version"] == etag.strip('"') and body["service"] == "directory"
    # the version is a hash of the catalog itself
    rest = {k: v for k, v in body.items() if k != "version"}
    assert (
        hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:32]
        == body["version"]
    )
    # unchanged: the same tag every time, and a 304 without a body when the client has it
    assert httpx.get(url).headers["etag"] == etag
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = httpx.get(url, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    stale = httpx.get(url, headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200 and stale.json() == body
    # each service has its own
    sites = httpx.get(f"{server.base_url}/api/sites/commands")
    assert sites.headers["etag"] != etag and sites.json()["version"] != body["version"]


def test_an_unknown_service_has_no_etag(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/api/nothing/commands", headers={"If-None-Match": "*"})
    assert response.status_code == 404 and "etag" not in response.headers
