"""RFC 8628 end to end: a person approves in the browser, the device polls."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from joserfc.jwk import KeySet

from bastion.authority.token_validation import validate_access_token
from tests.support.browser import Browser, page_error
from tests.support.flows import (
    Org,
    device_code_request,
    device_sign_in,
    make_tenant,
    poll_token,
    refresh,
)
from tests.support.server import ServerProcess


@pytest.fixture
def t(server: ServerProcess) -> Org:
    return make_tenant(server)


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_admin_signs_in_once_and_gets_tokens_for_two_services(t: Org) -> None:
    mail = t.audience("mail")
    tokens = device_sign_in(t, t.admin, scope=f"{mail}/.default openid profile offline_access")
    jwks = KeySet.import_key_set(httpx.get(t.discovery()["jwks_uri"]).json())

    def verify(token: str, audience: str) -> dict:
        return validate_access_token(
            token,
            issuer=t.issuer,
            audience=audience,
            keys=lambda _refresh: jwks,
            now=t.server.now(),
        )

    mail_claims = verify(tokens["access_token"], mail)
    assert mail_claims["aud"] == mail
    assert mail_claims["amr"] == ["pwd", "otp", "mfa"]
    assert mail_claims["roles"] == ["Global Administrator"]
    assert tokens["scope"] == f"openid profile offline_access {mail}/.default"

    sites = t.audience("sites")
    second = refresh(t, tokens["refresh_token"], resource=sites)
    assert second.status_code == 200, second.text
    sites_claims = verify(second.json()["access_token"], sites)
    assert sites_claims["aud"] == sites
    assert sites_claims["sid"] == mail_claims["sid"]
    with pytest.raises(Exception, match="audience"):
        verify(second.json()["access_token"], mail)


def test_polling_answers_pending_then_slow_down(t: Org) -> None:
    """T11: a poll sooner than the interval gets slow_down, and the interval grows by 5 s."""
    for wait, expected in ((5, "slow_down"), (10, "authorization_pending")):
        start = device_code_request(t)
        assert start["interval"] == 5
        first = poll_token(t, start["device_code"])
        assert first.status_code == 400 and first.json()["error"] == "authorization_pending"
        second = poll_token(t, start["device_code"])
        assert second.json()["error"] == "slow_down"
        # after slow_down the enforced interval is 10 s: the old 5 s is now too soon
        t.server.advance(wait)
        assert poll_token(t, start["device_code"]).json()["error"] == expected


def test_denied_and_expired(t: Org) -> None:
    start = device_code_request(t)
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/device")
    response = browser.submit(f"/t/{t.name}/device", {"user_code": start["user_code"]})
    from tests.support.flows import sign_in_pages

    response = sign_in_pages(browser, t, t.password_only, response=response)
    assert "/device/confirm" in str(response.url)
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "deny"})
    assert poll_token(t, start["device_code"]).json()["error"] == "access_denied"

    late = device_code_request(t)
    t.server.advance(late["expires_in"] + 1)
    assert poll_token(t, late["device_code"]).json()["error"] == "expired_token"


def test_wrong_user_codes_are_limited_per_source(t: Org) -> None:
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/device")
    for _ in range(5):
        response = browser.submit(f"/t/{t.name}/device", {"user_code": "BBBB-BBBB"})
        assert response.status_code == 400
    start = device_code_request(t)
    response = browser.submit(f"/t/{t.name}/device", {"user_code": start["user_code"]})
    assert response.status_code == 429, page_error(response)


def test_user_codes_use_the_rfc_alphabet(t: Org) -> None:
    body = device_code_request(t)
    code = body["user_code"].replace("-", "")
    assert len(code) == 8 and set(code) <= set("BCDFGHJKLMNPQRSTVWXZ")
    raw = body["device_code"]
    assert len(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) >= 16
    assert body["verification_uri"] == f"{t.issuer}/device"
    assert body["user_code"] in body["message"]


def test_approval_page_names_the_client_and_the_code(t: Org) -> None:
    start = device_code_request(t)
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/device?user_code={start['user_code']}")
    response = browser.submit(f"/t/{t.name}/device", {"user_code": start["user_code"]})
    from tests.support.flows import sign_in_pages

    response = sign_in_pages(browser, t, t.password_only, response=response)
    assert "Bastion command line" in response.text
    assert start["user_code"] in response.text
