"""Authorization code with PKCE through a loopback redirect (RFC 6749, 7636, 8252, 9207)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from bastion.authority.grants.pkce_verification import s256
from tests.support.browser import Browser
from tests.support.flows import Org, sign_in_pages


def authorize_url(t: Org, **overrides: Any) -> str:
    verifier = overrides.pop("verifier", None)
    params = {
        "client_id": "bastion-cli",
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:53117/callback",
        "scope": "openid profile offline_access",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": s256(verifier) if verifier else s256("v" * 43),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return f"/t/{t.name}/oauth2/authorize?" + urlencode(
        {k: v for k, v in params.items() if v is not None}
    )


def sign_in_for_code(t: Org, browser: Browser, verifier: str, **overrides: Any) -> dict[str, str]:
    response = browser.get(authorize_url(t, verifier=verifier, **overrides))
    if "/login" in str(response.url):  # no sign-in page while the session lives
        response = sign_in_pages(browser, t, t.password_only, response=response)
    assert response.status_code == 303, response.text[:300]
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == overrides.get(
        "redirect_uri", "http://127.0.0.1:53117/callback"
    )
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def redeem(
    t: Org,
    code: str,
    verifier: str,
    redirect_uri: str = "http://127.0.0.1:53117/callback",
    client_id: str = "bastion-cli",
) -> httpx.Response:
    return httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
        },
    )


def test_code_with_pkce_through_loopback_on_any_port(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    browser = Browser(t.server.base_url)
    answer = sign_in_for_code(t, browser, verifier, state="xyz")
    assert answer["state"] == "xyz"
    assert answer["iss"] == t.issuer  # RFC 9207
    response = redeem(t, answer["code"], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"access_token", "refresh_token", "id_token"} <= body.keys()
    assert response.headers["cache-control"] == "no-store"


def test_wrong_or_missing_verifier_is_refused(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    browser = Browser(t.server.base_url)
    code = sign_in_for_code(t, browser, verifier)["code"]
    wrong = redeem(t, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = sign_in_for_code(t, browser, verifier)["code"]
    missing = redeem(t, code, "")
    assert missing.json()["error"] == "invalid_grant"


def test_pkce_is_required_and_s256_only(t: Org) -> None:
    browser = Browser(t.server.base_url)
    for overrides in (
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
    ):
        response = browser.get(authorize_url(t, **overrides), follow=False)
        assert response.status_code == 303
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["error"] == ["invalid_request"]
        assert query["iss"] == [t.issuer]
    assert t.discovery()["code_challenge_methods_supported"] == ["S256"]


def test_code_is_single_use_and_reuse_revokes_its_tokens(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    browser = Browser(t.server.base_url)
    code = sign_in_for_code(t, browser, verifier)["code"]
    first = redeem(t, code, verifier).json()
    second = redeem(t, code, verifier)
    assert second.json()["error"] == "invalid_grant"
    from tests.support.flows import refresh

    assert refresh(t, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_code_expires_after_ten_minutes_and_is_bound_to_client_and_redirect(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    browser = Browser(t.server.base_url)
    code = sign_in_for_code(t, browser, verifier)["code"]
    assert (
        redeem(t, code, verifier, redirect_uri="http://127.0.0.1:9/callback").json()["error"]
        == "invalid_grant"
    )
    code = sign_in_for_code(t, browser, verifier)["code"]
    t.server.advance(601)
    assert redeem(t, code, verifier).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:53117/callback/",  # trailing slash
        "http://127.0.0.1:53117/callback?x=1",  # extra query
        "http://127.0.0.1:53117/Callback",  # case change
        "http://evil.example/callback",  # another host
        "https://127.0.0.1.evil.example/callback",
    ],
)
def test_unregistered_redirect_uris_get_an_error_page_not_a_redirect(
    t: Org, redirect_uri: str
) -> None:
    browser = Browser(t.server.base_url)
    response = browser.get(authorize_url(t, redirect_uri=redirect_uri), follow=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("response_type", ["token", "id_token token", "code id_token"])
def test_no_implicit_or_hybrid_flow(t: Org, response_type: str) -> None:
    browser = Browser(t.server.base_url)
    response = browser.get(authorize_url(t, response_type=response_type), follow=False)
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["unsupported_response_type"]
    assert "access_token" not in response.headers["location"]


def test_password_grant_does_not_exist(t: Org) -> None:
    response = httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "password",
            "username": t.password_only.username,
            "password": t.password_only.password,
            "client_id": "bastion-cli",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    metadata = t.discovery()
    assert "password" not in metadata["grant_types_supported"]
    assert metadata["response_types_supported"] == ["code"]


def test_authorize_sends_no_cors_headers(t: Org) -> None:
    response = httpx.get(
        t.issuer + authorize_url(t).split(f"/t/{t.name}", 1)[1],
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_second_sign_in_is_silent_while_the_session_lives(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    browser = Browser(t.server.base_url)
    sign_in_for_code(t, browser, verifier)
    response = browser.get(authorize_url(t, verifier=verifier), follow=False)
    assert response.status_code == 303
    assert "code=" in response.headers["location"]


def test_max_age_asks_for_the_second_factor_again_not_the_password(t: Org) -> None:
    """RFC 9470 step-up: an old sign-in proves the second factor again."""
    verifier = secrets.token_urlsafe(48)
    browser = Browser(t.server.base_url)
    response = browser.get(authorize_url(t, verifier=verifier))
    response = sign_in_pages(browser, t, t.admin, response=response)
    first = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    first_tokens = redeem(t, first["code"], verifier).json()
    t.server.advance(700)
    cookie_before = dict(browser.cookies)
    response = browser.get(authorize_url(t, verifier=verifier, max_age="600"))
    assert str(response.url).endswith("/login/mfa"), response.url
    assert "Confirm it" in response.text
    response = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    assert response.status_code == 303
    assert browser.cookies != cookie_before  # S3: a new cookie after step-up
    answer = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    tokens = redeem(t, answer["code"], verifier).json()
    from tests.e2e.test_device_grant import claims_of

    old, new = claims_of(first_tokens["access_token"]), claims_of(tokens["access_token"])
    assert new["sid"] == old["sid"]
    assert new["auth_time"] >= old["auth_time"] + 700
    assert new["acr"] == "urn:bastion:acr:2fa"


def test_clients_use_only_their_registered_grants(t: Org) -> None:
    t.server.cli(
        "client",
        "create",
        "--tenant",
        t.name,
        "web-only",
        "--name",
        "Web",
        "--redirect-uri",
        "https://app.example/cb",
        "--grant-type",
        "authorization_code",
    )
    device = httpx.post(f"{t.issuer}/oauth2/devicecode", data={"client_id": "web-only"})
    assert device.json()["error"] == "unauthorized_client"
    browser = Browser(t.server.base_url)
    denied = browser.get(
        authorize_url(t, client_id="web-only", redirect_uri="https://app.example/cb"), follow=False
    )
    assert denied.status_code == 303 and "/login" in denied.headers["location"]
