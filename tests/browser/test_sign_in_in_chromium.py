"""The sign-in pages in a real browser (Debian's Chromium, driven by Playwright).

A person approves a device sign-in and registers an authenticator app on the way, as
``pat`` would in the demo: the pages, their cookies (``__Host-``, Secure, on loopback HTTP)
and their redirects have to work in Chromium, not only in an HTTP client.
"""

from __future__ import annotations

import re

from bastion.authority.factors import totp
from tests.support.flows import Org, device_code_request, make_tenant, poll_token
from tests.support.server import ServerProcess


def test_device_sign_in_with_authenticator_registration(
    browser: object, server: ServerProcess
) -> None:
    t: Org = make_tenant(server)
    start = device_code_request(t)
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(start["verification_uri_complete"])
    assert page.input_value("#user_code") == start["user_code"]
    page.click("button[type=submit]")
    page.fill("#username", t.enrolling.username)
    page.fill("#password", t.enrolling.password)
    page.click("button[type=submit]")
    assert page.url.endswith("/login/enroll")
    assert page.locator(".qr svg").count() == 1
    secret = totp.base32_to_secret(page.inner_text("#secret"))
    page.fill("#code", totp.code_at(secret, server.now()))
    page.click("button[type=submit]")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    page.click("text=I saved them, continue")
    assert page.url.endswith("/device/confirm")
    assert re.search(start["user_code"], page.inner_text("#user-code"))
    page.click("button[value=approve]")
    assert "signed in on your device" in page.inner_text("#message")
    server.advance(5)
    tokens = poll_token(t, start["device_code"]).json()
    assert "access_token" in tokens
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == f"__Host-bastion-{t.name}"]
    assert session and session[0]["httpOnly"] and session[0]["secure"]
    assert session[0]["sameSite"] == "Lax"
