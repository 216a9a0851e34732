"""The sign-in pages' Content-Security-Policy (S1, X2): a form whose POST is answered with a
303 to the client's redirect URI may go to exactly that URI's origin, and nowhere else;
framing stays forbidden. (The end-to-end proof in Chromium is
``tests/browser/test_cli_sign_in_in_chromium.py``.)"""

from __future__ import annotations

import re

from tests.e2e.test_authorization_code import authorize_url
from tests.support.browser import Browser
from tests.support.flows import Org


def form_action(csp: str) -> str:
    match = re.search(r"form-action ([^;]+)", csp)
    assert match, csp
    return match.group(1).strip()


def test_the_pages_of_a_pending_authorization_allow_its_redirect_origin_only(t: Org) -> None:
    browser = Browser(t.server.base_url)
    try:
        login = browser.get(authorize_url(t, redirect_uri="http://127.0.0.1:41234/callback"))
        assert "/login" in str(login.url) and login.status_code == 200
        csp = login.headers["content-security-policy"]
        assert form_action(csp) == "'self' http://127.0.0.1:41234"  # no path: CSP drops it
        assert "frame-ancestors 'none'" in csp and login.headers["x-frame-options"] == "DENY"
        # a wrong password: the page shown again keeps the same allowance
        again = browser.submit(
            f"/t/{t.name}/login", {"username": t.admin.username, "password": "wrong-one"}
        )
        assert again.status_code == 401
        assert form_action(again.headers["content-security-policy"]) == (
            "'self' http://127.0.0.1:41234"
        )
        # the second-factor page, whose POST ends at the redirect URI
        mfa = browser.submit(
            f"/t/{t.name}/login", {"username": t.admin.username, "password": t.admin.password}
        )
        assert str(mfa.url).endswith("/login/mfa")
        assert form_action(mfa.headers["content-security-policy"]) == (
            "'self' http://127.0.0.1:41234"
        )
        done = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
        assert done.status_code == 303  # X2: still a 303 after the POST
        assert done.headers["location"].startswith("http://127.0.0.1:41234/callback?")
    finally:
        browser.close()


def test_a_sign_in_page_with_no_authorization_allows_only_itself(t: Org) -> None:
    browser = Browser(t.server.base_url)
    try:
        page = browser.get(f"/t/{t.name}/login")
        assert form_action(page.headers["content-security-policy"]) == "'self'"
    finally:
        browser.close()
