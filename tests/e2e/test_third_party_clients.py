"""Real, unmodified third-party OAuth clients against a real ``bastion demo --tls`` process.

MSAL for Python (device flow, then silent acquisition for a second service through the
refresh token) and Authlib (device grant by hand, refresh with RFC 8707 ``resource``,
authorization code with PKCE through a loopback redirect). Everything goes over HTTPS,
verified against the demo's own local CA; verification is never disabled.

The demo admin signs in (password and TOTP) once per module: a TOTP time step is accepted
only once per user, so reusing it would need a wait for the next step.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet

from bastion.authority.factors import totp
from tests.support.browser import Browser, page_error
from tests.support.server import create_postgres_database, free_port, wait_healthy

pytestmark = pytest.mark.slow

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OIDC_SCOPE = "openid profile offline_access"
ADMIN = "admin@contoso"
SAM = "sam@contoso"


@dataclass
class Demo:
    """What ``bastion demo --tls --json`` printed, plus what its discovery document says."""

    issuer: str
    base: str
    tenant: str
    client_id: str
    ca_file: str
    users: dict[str, dict[str, Any]]
    log_file: Path
    discovery: dict[str, Any] = field(default_factory=dict)
    jwks: KeySet | None = None
    _totp_steps: dict[str, int] = field(default_factory=dict)
    _totp_lock: threading.Lock = field(default_factory=threading.Lock)

    def audience(self, service: str) -> str:
        return f"{self.base}/api/{service}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def browser(self) -> Browser:
        return Browser(self.base, verify=self.tls())

    def requests_session(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.ca_file
        session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
        return session

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:]

    def totp_code(self, username: str) -> str:
        """The current code, waiting for the next time step if this one was already used."""
        secret = totp.base32_to_secret(self.users[username]["totp_secret"])
        with self._totp_lock:
            now = time.time()
            if self._totp_steps.get(username) == totp.step_at(now):
                time.sleep(min(totp.PERIOD, totp.PERIOD - now % totp.PERIOD + 0.05))
                now = time.time()
            self._totp_steps[username] = totp.step_at(now)
            return totp.code_at(secret, now)


def _stop(process: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    # A closed requests session leaves its sockets open while a response still refers to
    # them (often from a reference cycle inside a client library), and uvicorn's graceful
    # shutdown would wait for those keep-alive connections: collect them first.
    gc.collect()
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reader.join(5)  # the drain reaches end of file once the process is gone
    if process.stdout is not None and not reader.is_alive():
        process.stdout.close()


def _read_stdout(process: subprocess.Popen[bytes], lines: queue.Queue[bytes]) -> None:
    """Hand over the first line, then keep draining so the server never blocks on a full pipe."""
    assert process.stdout is not None
    lines.put(process.stdout.readline())
    for _ in process.stdout:
        pass


@pytest.fixture(scope="module")
def demo(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp(f"demo-{backend}")
    log_file = data_dir / "demo-stderr.log"
    port = free_port()
    env = dict(os.environ)
    for name in ("BASTION_DATABASE_URL", "BASTION_DATA_DIR", "BASTION_CLOCK_OFFSET_FILE"):
        env.pop(name, None)
    if backend == "postgresql":
        env["BASTION_DATABASE_URL"] = create_postgres_database()
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bastion",
                "demo",
                "--tls",
                "--json",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir / "data"),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=_read_stdout, args=(process, lines), daemon=True)
    try:
        reader.start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            first = b""
        if not first:
            raise RuntimeError(f"no JSON line from bastion demo: {log_file.read_text()[-3000:]}")
        info = json.loads(first)
        issuer = info["issuer"]
        assert issuer == f"https://127.0.0.1:{port}/t/contoso"
        base = issuer.removesuffix(f"/t/{info['tenant']}")
        d = Demo(
            issuer=issuer,
            base=base,
            tenant=info["tenant"],
            client_id=info["client_id"],
            ca_file=info["ca_file"],
            users={user["username"]: user for user in info["users"]},
            log_file=log_file,
        )
        wait_healthy(base, process, log_file, verify=d.tls())
        with httpx.Client(verify=d.tls(), timeout=30) as client:
            response = client.get(f"{issuer}/.well-known/openid-configuration")
            assert response.status_code == 200, response.text
            d.discovery = response.json()
            d.jwks = KeySet.import_key_set(client.get(d.discovery["jwks_uri"]).json())
        assert d.discovery["issuer"] == issuer
        yield d
    finally:
        _stop(process, reader)


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def verified_claims(demo: Demo, token: str, audience: str) -> dict[str, Any]:
    """Check the ES256 signature against the discovery JWKS, then iss, aud and exp."""
    assert demo.jwks is not None
    decoded = jwt.decode(token, demo.jwks, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": demo.issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims == unverified_claims(token)
    return dict(decoded.claims)


def sign_in_pages(
    browser: Browser, demo: Demo, username: str, *, response: httpx.Response
) -> httpx.Response:
    """From the login page to the end of the sign-in: password, then TOTP if asked."""
    assert "/login" in str(response.url), response.text[:300]
    response = browser.submit(
        f"/t/{demo.tenant}/login",
        {"username": username, "password": demo.users[username]["password"]},
    )
    if "/login/mfa" in str(response.url):
        response = browser.submit(f"/t/{demo.tenant}/login/mfa", {"code": demo.totp_code(username)})
    stuck = response.status_code != 303 and "/login" in str(response.url)
    assert not stuck, page_error(response) or response.text[:500]
    return response


def approve_device(demo: Demo, username: str, user_code: str) -> None:
    """The person's side of RFC 8628: enter the code, sign in, approve."""
    browser = demo.browser()
    try:
        browser.get(f"/t/{demo.tenant}/device?user_code={user_code}")
        response = browser.submit(f"/t/{demo.tenant}/device", {"user_code": user_code})
        if "/login" in str(response.url):
            response = sign_in_pages(browser, demo, username, response=response)
        assert "/device/confirm" in str(response.url), response.text[:500]
        assert user_code in response.text
        done = browser.submit(f"/t/{demo.tenant}/device/confirm", {"action": "approve"})
        assert done.status_code == 200, done.text[:500]
    finally:
        browser.close()


def in_background(work: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.fixture
def http_session(demo: Demo) -> Iterator[requests.Session]:
    """A requests session trusting only the demo's CA, closed after the test.

    An open keep-alive connection would hold up the server's graceful shutdown.
    """
    with demo.requests_session() as session:
        yield session


def test_msal_device_flow_then_silent_refresh_for_a_second_service(
    demo: Demo, http_session: requests.Session
) -> None:
    mail, sites = demo.audience("mail"), demo.audience("sites")
    app = msal.PublicClientApplication(
        demo.client_id, oidc_authority=demo.issuer, http_client=http_session
    )
    flow = app.initiate_device_flow(scopes=[f"{mail}/.default"])
    assert "user_code" in flow, flow
    assert flow["user_code"] in flow["message"]

    thread, errors = in_background(lambda: approve_device(demo, ADMIN, flow["user_code"]))
    deadline = time.monotonic() + 45
    result = app.acquire_token_by_device_flow(
        flow, exit_condition=lambda _flow: bool(errors) or time.monotonic() > deadline
    )
    thread.join(30)
    if errors:
        raise errors[0]
    assert "access_token" in result, (result, demo.log())
    assert result["token_source"] == "identity_provider"
    assert result["id_token_claims"]["preferred_username"] == ADMIN

    mail_claims = verified_claims(demo, result["access_token"], mail)
    assert unverified_claims(result["access_token"])["aud"] == mail
    assert {"pwd", "otp"} <= set(mail_claims["amr"])
    assert mail_claims["roles"] == ["Global Administrator"]

    accounts = app.get_accounts()
    assert [account["username"] for account in accounts] == [ADMIN]

    second = app.acquire_token_silent([f"{sites}/.default"], account=accounts[0])
    assert second is not None and "access_token" in second, (second, demo.log())
    assert second["token_source"] == "identity_provider"  # through the refresh token
    sites_claims = verified_claims(demo, second["access_token"], sites)
    assert sites_claims["sub"] == mail_claims["sub"]
    assert sites_claims["sid"] == mail_claims["sid"]
    assert {"pwd", "otp"} <= set(sites_claims["amr"])
    with pytest.raises(InvalidClaimError, match="aud"):
        verified_claims(demo, second["access_token"], mail)

    again = app.acquire_token_silent([f"{mail}/.default"], account=accounts[0])
    assert again is not None and again["token_source"] == "cache"
    assert again["access_token"] == result["access_token"]


def test_authlib_client_device_grant_and_refresh_for_second_service(demo: Demo) -> None:
    sites, chat = demo.audience("sites"), demo.audience("chat")
    token_endpoint = demo.discovery["token_endpoint"]
    client = OAuth2Session(
        client_id=demo.client_id,
        scope=OIDC_SCOPE,
        verify=demo.ca_file,
        trust_env=False,
        default_timeout=30,
    )
    with client:
        response = client.post(
            demo.discovery["device_authorization_endpoint"],
            data={"client_id": demo.client_id, "scope": OIDC_SCOPE, "resource": sites},
            withhold_token=True,
        )
        assert response.status_code == 200, response.text
        start = response.json()
        assert {"device_code", "user_code", "verification_uri", "expires_in"} <= start.keys()
        interval = start.get("interval", 5)

        def poll() -> dict[str, Any]:
            token: dict[str, Any] = client.fetch_token(
                token_endpoint, grant_type=DEVICE_GRANT, device_code=start["device_code"]
            )
            return token

        with pytest.raises(OAuthError) as pending:
            poll()
        assert pending.value.error == "authorization_pending"
        last_poll = time.monotonic()

        approve_device(demo, SAM, start["user_code"])

        deadline = time.monotonic() + 45
        token: dict[str, Any] | None = None
        while token is None:
            time.sleep(max(0.0, last_poll + interval - time.monotonic()))
            try:
                token = poll()
            except OAuthError as error:
                if error.error == "slow_down":
                    interval += 5
                elif error.error != "authorization_pending":
                    raise
                assert time.monotonic() < deadline, "the device grant was never completed"
            last_poll = time.monotonic()

        assert token["token_type"].lower() == "bearer"
        assert {"access_token", "refresh_token", "id_token"} <= token.keys()
        sites_claims = verified_claims(demo, token["access_token"], sites)
        assert sites_claims["amr"] == ["pwd"]
        first_refresh = str(token["refresh_token"])

        refreshed = client.refresh_token(token_endpoint, refresh_token=first_refresh, resource=chat)
        chat_claims = verified_claims(demo, refreshed["access_token"], chat)
        assert unverified_claims(refreshed["access_token"])["aud"] == chat
        assert chat_claims["amr"] == ["pwd"]
        assert chat_claims["sub"] == sites_claims["sub"]
        # Authlib keeps the old refresh token when none comes back: a new one means rotation
        assert refreshed["refresh_token"] != first_refresh


def test_authlib_authorization_code_with_pkce_through_loopback(demo: Demo) -> None:
    mail = demo.audience("mail")
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    client = OAuth2Session(
        client_id="bastion-cli",
        code_challenge_method="S256",
        redirect_uri=redirect_uri,
        scope=OIDC_SCOPE,
        verify=demo.ca_file,
        trust_env=False,
        default_timeout=30,
    )
    browser = demo.browser()

    def authorize(verifier: str) -> dict[str, str]:
        """The browser's trip: the authorization URL, the sign-in if any, the redirect back."""
        url, state = client.create_authorization_url(
            demo.discovery["authorization_endpoint"], code_verifier=verifier, resource=mail
        )
        response = browser.get(url)
        if "/login" in str(response.url):  # no sign-in page while the session lives
            response = sign_in_pages(browser, demo, SAM, response=response)
        assert response.status_code in (302, 303), response.text[:500]
        location = urlsplit(response.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
        answer = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert "error" not in answer, answer
        assert answer["state"] == state
        assert answer["iss"] == demo.issuer  # RFC 9207
        return answer

    with client:
        try:
            verifier = generate_token(48)
            answer = authorize(verifier)
            token = client.fetch_token(
                demo.discovery["token_endpoint"], code=answer["code"], code_verifier=verifier
            )
            assert {"access_token", "refresh_token", "id_token"} <= token.keys()
            id_claims = verified_claims(demo, token["id_token"], "bastion-cli")
            assert id_claims["preferred_username"] == SAM
            access_claims = verified_claims(demo, token["access_token"], mail)
            assert access_claims["sub"] == id_claims["sub"]
            assert access_claims["amr"] == ["pwd"]

            fresh = authorize(generate_token(48))
            with pytest.raises(OAuthError) as refused:
                client.fetch_token(
                    demo.discovery["token_endpoint"],
                    code=fresh["code"],
                    code_verifier=generate_token(48),
                )
            assert refused.value.error == "invalid_grant"
        finally:
            browser.close()
