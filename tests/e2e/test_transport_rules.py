"""HTTPS and page rules (X1, X2) against ``bastion serve`` with TLS (the local CA of
``bastion.server.tls``, as ``bastion demo --tls`` uses):

- X1: TLS 1.2 or 1.3 only; every answer under TLS carries HSTS with max-age of at least a
  year and includeSubDomains; plain ``http://`` to the token endpoint gets no redirect;
- X2: every page forbids framing (``frame-ancestors 'none'``); the authorization endpoint
  sends no CORS headers; every redirect after a POST with credentials is a 303.
"""

from __future__ import annotations

import re
import socket
import ssl
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bastion.authority.grants.pkce_verification import s256
from bastion.server.tls import LocalTls, ensure_local_tls
from tests.support.browser import Browser
from tests.support.flows import Org
from tests.support.server import (
    ServerProcess,
    running_server,
)

YEAR = 31536000


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_server(
    backend: str, tls: LocalTls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``bastion serve --tls-cert --tls-key`` on a free port."""
    data_dir = tmp_path_factory.mktemp(f"https-{backend}")
    with running_server(backend, data_dir, tls=tls) as proc:
        yield proc


pytestmark = pytest.mark.tenant(served_by="https_server")


def trusting(tls: LocalTls) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca_file))


def port_of(server: ServerProcess) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def handshake(server: ServerProcess, tls: LocalTls, version: ssl.TLSVersion) -> str:
    """The version a handshake at exactly ``version`` settles on; raises if refused."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(tls.ca_file)
    # let the client offer old versions at all (OpenSSL 3 refuses them at level 1 and up)
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        return str(conn.version())


def test_only_tls_1_2_and_1_3_are_spoken(https_server: ServerProcess, tls: LocalTls) -> None:
    assert handshake(https_server, tls, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert handshake(https_server, tls, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError) as refused:
            handshake(https_server, tls, old)
        # the hello was sent and the server refused it (an alert, or it hung up); this
        # client's own library did not refuse to offer the version
        assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), refused.value
    # a TLS 1.2 client offering only CBC suites finds nothing in common either
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(tls.ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0")
    with (
        pytest.raises(ssl.SSLError),
        socket.create_connection(("127.0.0.1", port_of(https_server)), timeout=10) as raw,
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1").close()


def hsts_seconds(response: httpx.Response) -> int:
    header = response.headers.get("strict-transport-security", "")
    assert "includesubdomains" in header.lower(), (response.request.url, header)
    match = re.search(r"max-age=(\d+)", header)
    assert match, (response.request.url, header)
    return int(match.group(1))


def test_every_answer_under_tls_carries_hsts(t: Org, tls: LocalTls) -> None:
    base = t.server.base_url
    with httpx.Client(verify=trusting(tls), follow_redirects=False) as client:
        answers = [
            client.get(f"{base}/healthz"),
            client.get(f"{t.issuer}/.well-known/openid-configuration"),
            client.get(f"{t.issuer}/discovery/keys"),
            client.get(f"{t.issuer}/login", headers={"accept": "text/html"}),
            client.get(f"{t.issuer}/oauth2/authorize?client_id=nobody"),
            client.post(f"{t.issuer}/oauth2/token", data={"grant_type": "password"}),
            client.post(f"{t.issuer}/oauth2/devicecode", data={"client_id": "bastion-cli"}),
            client.post(f"{base}/api/directory/commands/Get-User", json={}),
            client.get(f"{base}/no/such/page"),
            client.get(f"{t.issuer}/oauth2/token"),  # 405
        ]
    assert {a.status_code for a in answers} >= {200, 400, 401, 404, 405}
    for answer in answers:
        assert hsts_seconds(answer) >= YEAR


def test_plain_http_to_the_token_endpoint_is_not_redirected(t: Org) -> None:
    """Plain HTTP to the TLS port: the request fails, it is never answered with a 3xx that
    would teach a client to send its credentials again elsewhere."""
    url = f"http://127.0.0.1:{port_of(t.server)}/t/{t.name}/oauth2/token"
    try:
        answer = httpx.post(
            url, data={"grant_type": "refresh_token", "refresh_token": "x"}, timeout=10
        )
    except httpx.HTTPError:
        return
    assert not 300 <= answer.status_code < 400, answer.headers
    assert "location" not in answer.headers


class RecordingBrowser(Browser):
    """A browser that keeps every answer it got, with the method that asked for it."""

    def __init__(self, base_url: str, **client: Any) -> None:
        super().__init__(base_url, **client)
        self.seen: list[tuple[str, httpx.Response]] = []
        self.client.event_hooks["response"].append(self._keep)

    def _keep(self, response: httpx.Response) -> None:
        self.seen.append((response.request.method, response))


def authorize_query(**overrides: str) -> str:
    params = {
        "client_id": "bastion-cli",
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:53117/callback",
        "scope": "openid",
        "state": "s",
        "code_challenge": s256("v" * 43),
        "code_challenge_method": "S256",
        **overrides,
    }
    return urlencode(params)


def test_pages_forbid_framing_and_credential_posts_answer_303(t: Org, tls: LocalTls) -> None:
    browser = RecordingBrowser(t.server.base_url, verify=trusting(tls))
    # sign-in pages through the authorization endpoint, with the second factor
    response = browser.get(f"/t/{t.name}/oauth2/authorize?{authorize_query()}")
    assert "/login" in str(response.url)
    browser.submit(f"/t/{t.name}/login", {"username": t.admin.username, "password": "wrong"})
    response = browser.submit(
        f"/t/{t.name}/login", {"username": t.admin.username, "password": t.admin.password}
    )
    assert str(response.url).endswith("/login/mfa")
    browser.submit(f"/t/{t.name}/login/mfa", {"code": "000000"})
    browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    # the device pages: code entry, a wrong code, the confirmation
    start = httpx.post(
        f"{t.issuer}/oauth2/devicecode", data={"client_id": "bastion-cli"}, verify=trusting(tls)
    ).json()
    browser.get(f"/t/{t.name}/device")
    browser.submit(f"/t/{t.name}/device", {"user_code": "BCDFGHJK"})
    browser.submit(f"/t/{t.name}/device", {"user_code": start["user_code"]})
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    # registration of a first factor, an error page, sign-out
    other = RecordingBrowser(t.server.base_url, verify=trusting(tls))
    other.get(f"/t/{t.name}/oauth2/authorize?{authorize_query()}")
    enroll = other.submit(
        f"/t/{t.name}/login",
        {"username": t.enrolling.username, "password": t.enrolling.password},
    )
    assert "/login/enroll" in str(enroll.url)
    other.submit(f"/t/{t.name}/login/enroll", {"code": "000000"})
    browser.get(f"/t/{t.name}/oauth2/authorize?{authorize_query(redirect_uri='https://x.example')}")
    browser.get(f"/t/{t.name}/oauth2/logout")
    browser.get("/no/such/page")

    seen = browser.seen + other.seen
    pages = [r for _, r in seen if r.headers.get("content-type", "").startswith("text/html")]
    paths = {r.request.url.path for r in pages}
    for path in ("login", "login/mfa", "login/enroll", "device", "device/confirm"):
        assert f"/t/{t.name}/{path}" in paths, paths
    assert f"/t/{t.name}/oauth2/authorize" in paths  # the error page
    for page in pages:
        policy = page.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy, (page.request.url, policy)
    posted = [r for method, r in seen if method == "POST" and 300 <= r.status_code < 400]
    assert len(posted) >= 4  # password, second factor, device code, confirmation
    for answer in posted:
        assert answer.status_code == 303, (answer.request.url, answer.status_code)


def test_the_authorization_endpoint_sends_no_cors_headers(t: Org, tls: LocalTls) -> None:
    url = f"{t.issuer}/oauth2/authorize?{authorize_query()}"
    origin = {"origin": "https://evil.example"}
    with httpx.Client(verify=trusting(tls), follow_redirects=False) as client:
        answers = [
            client.get(url, headers=origin),
            client.get(url, headers={**origin, "accept": "text/html"}),
            client.options(url, headers={**origin, "access-control-request-method": "GET"}),
        ]
    for answer in answers:
        assert not any(name.startswith("access-control-") for name in answer.headers), (
            answer.status_code,
            answer.headers,
        )
