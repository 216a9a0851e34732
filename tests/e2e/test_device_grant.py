"""RFC 8628 end to end: a person approves in the browser, the device polls."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse

import httpx
import pytest
from joserfc.jwk import KeySet

from bastion.authority.token_validation import validate_access_token
from tests.support.browser import Browser, page_error
from tests.support.flows import (
    Org,
    Person,
    approve_device,
    device_code_request,
    device_sign_in,
    poll_token,
    refresh,
    sign_in_pages,
)


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


def test_a_connection_idle_for_one_polling_interval_is_still_open(t: Org) -> None:
    """A device polls every ``interval`` seconds (5 by default) on one kept-alive connection.
    Were the server to close idle connections after as long, the poll would race the close
    and, over TLS, wait out the TLS shutdown for an answer that never comes. The server's
    own timer cannot be driven by the test clock, so this waits one interval and a second."""
    start = device_code_request(t)
    address = urllib.parse.urlsplit(t.issuer)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read()
        opened = connection.sock
        time.sleep(start["interval"] + 1)
        connection.request("GET", "/healthz")  # raises RemoteDisconnected had it been closed
        answer = connection.getresponse()
        assert answer.status == 200 and answer.read()
        assert connection.sock is opened
    finally:
        connection.close()


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


# -- RFC 9470 step-up through the device grant ----------------------------------------------


def signed_in_browser(t: Org, person: Person) -> tuple[Browser, dict]:
    """A browser signed in through a first device code, and that code's tokens."""
    start = device_code_request(t)
    browser = Browser(t.server.base_url)
    done = approve_device(browser, t, person, start["user_code"])
    assert done.status_code == 200, done.text[:300]
    tokens = poll_token(t, start["device_code"])
    assert tokens.status_code == 200, tokens.text
    return browser, tokens.json()


def step_up_request(t: Org, **extra: str) -> dict:
    form = {
        "client_id": "bastion-cli",
        "scope": "openid profile offline_access",
        "max_age": "600",
        "acr_values": "urn:bastion:acr:2fa",
        **extra,
    }
    response = httpx.post(f"{t.issuer}/oauth2/devicecode", data=form)
    assert response.status_code == 200, response.text
    return response.json()


def enter_code(browser: Browser, t: Org, user_code: str) -> httpx.Response:
    browser.get(f"/t/{t.name}/device?user_code={user_code}")
    return browser.submit(f"/t/{t.name}/device", {"user_code": user_code})


def test_a_step_up_device_code_asks_the_second_factor_of_an_old_sign_in(t: Org) -> None:
    browser, first = signed_in_browser(t, t.admin)
    t.server.advance(700)  # older than max_age=600
    start = step_up_request(t)
    response = enter_code(browser, t, start["user_code"])
    # the second factor again, not the password
    assert str(response.url).endswith("/login/mfa"), response.url
    assert "Confirm it" in response.text
    cookie_before = dict(browser.cookies)
    response = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    assert str(response.url).endswith("/device/confirm"), response.url
    assert start["user_code"] in response.text
    assert browser.cookies != cookie_before  # S3: a new cookie after the step-up
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    answer = poll_token(t, start["device_code"])
    assert answer.status_code == 200, answer.text
    old, new = claims_of(first["access_token"]), claims_of(answer.json()["access_token"])
    assert new["sid"] == old["sid"]  # the same sign-in, stepped up
    assert new["auth_time"] >= old["auth_time"] + 700
    assert new["acr"] == "urn:bastion:acr:2fa" and "otp" in new["amr"]
    id_claims = claims_of(answer.json()["id_token"])
    assert id_claims["auth_time"] == new["auth_time"]


def test_a_recent_sign_in_approves_a_step_up_device_code_at_once(t: Org) -> None:
    browser, first = signed_in_browser(t, t.admin)
    t.server.advance(60)
    start = step_up_request(t)
    response = enter_code(browser, t, start["user_code"])
    assert str(response.url).endswith("/device/confirm"), response.url
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    answer = poll_token(t, start["device_code"]).json()
    assert (
        claims_of(answer["access_token"])["auth_time"]
        == claims_of(first["access_token"])["auth_time"]
    )
    # without max_age or acr_values an old sign-in approves as before
    t.server.advance(700)
    plain = device_code_request(t)
    response = enter_code(browser, t, plain["user_code"])
    assert str(response.url).endswith("/device/confirm"), response.url


def test_the_confirmation_cannot_skip_the_step_up(t: Org) -> None:
    browser, _ = signed_in_browser(t, t.admin)
    start = step_up_request(t, max_age="60")
    enter_code(browser, t, start["user_code"])  # recent: straight to the confirmation page
    t.server.advance(120)  # and the page was left open past max_age
    confirm = browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"}, follow=False)
    assert confirm.status_code == 303
    assert confirm.headers["location"].endswith("/login/mfa")
    assert poll_token(t, start["device_code"]).json()["error"] == "authorization_pending"
    browser.get(confirm.headers["location"])
    response = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    assert str(response.url).endswith("/device/confirm"), response.url
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    t.server.advance(5)
    assert poll_token(t, start["device_code"]).status_code == 200
    # opening the confirmation page after max_age has passed asks the second factor too
    later = step_up_request(t, max_age="60")
    response = enter_code(browser, t, later["user_code"])
    assert str(response.url).endswith("/device/confirm"), response.url
    t.server.advance(120)
    again = browser.get(f"/t/{t.name}/device/confirm")
    assert str(again.url).endswith("/login/mfa"), again.url


def test_a_step_up_for_an_account_without_a_second_factor_asks_the_password(t: Org) -> None:
    browser, _ = signed_in_browser(t, t.password_only)
    start = step_up_request(t)
    # recent enough: nothing more can be asked, so the approval goes on (1fa stays 1fa)
    response = enter_code(browser, t, start["user_code"])
    assert str(response.url).endswith("/device/confirm"), response.url
    t.server.advance(700)
    later = step_up_request(t)
    response = enter_code(browser, t, later["user_code"])
    assert str(response.url).endswith("/login"), response.url
    response = sign_in_pages(browser, t, t.password_only, response=response)
    assert str(response.url).endswith("/device/confirm"), response.url
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    claims = claims_of(poll_token(t, later["device_code"]).json()["access_token"])
    assert claims["acr"] == "urn:bastion:acr:1fa" and t.server.now() - claims["auth_time"] < 60


def test_step_up_parameters_are_checked(t: Org) -> None:
    for bad in ({"max_age": "ten"}, {"max_age": "-1"}, {"acr_values": "urn:x\x00"}):
        form = {"client_id": "bastion-cli", **bad}
        response = httpx.post(f"{t.issuer}/oauth2/devicecode", data=form)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"] == "invalid_request"
