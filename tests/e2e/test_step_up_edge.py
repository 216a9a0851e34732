"""RFC 9470 step-up at the edge of the window, and how the challenge names the window.

A token carries ``auth_time`` in whole seconds. The command plane measures a sign-in's age
from that second; the authority must measure from the same second, or a command in the
window's last second is challenged, the sign-in is found recent enough, no factor is asked,
and the new token (with the same ``auth_time``) is refused again, forever.
"""

from __future__ import annotations

import math
import secrets
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update

from bastion.store.schema import sessions
from tests.e2e.test_authorization_code import authorize_url, redeem
from tests.e2e.test_device_grant import claims_of
from tests.support.browser import Browser
from tests.support.flows import make_tenant, sign_in_pages
from tests.support.plane import admin_token, run
from tests.support.server import ServerProcess


def _code_of(response_location: str) -> str:
    return parse_qs(urlsplit(response_location).query)["code"][0]


def test_a_command_in_the_windows_last_second_steps_up_instead_of_looping(
    server: ServerProcess,
) -> None:
    window = 60
    t = make_tenant(server, step_up_window=window)
    directory = t.audience("directory")
    verifier = secrets.token_urlsafe(48)
    browser = Browser(server.base_url)
    response = browser.get(authorize_url(t, verifier=verifier, resource=directory))
    response = sign_in_pages(browser, t, t.admin, response=response)
    first = redeem(t, _code_of(response.headers["location"]), verifier).json()
    sid = claims_of(first["access_token"])["sid"]

    # The sign-in happened at .99 of a second: the token says the whole second before it.
    exact = math.floor(server.now()) - 5 + 0.99
    with server.authority.store.begin() as conn:
        conn.execute(update(sessions).where(sessions.c.id == sid).values(auth_time=exact))
    again = browser.get(authorize_url(t, verifier=verifier, resource=directory))
    assert again.status_code == 303, again.text[:300]
    token = redeem(t, _code_of(again.headers["location"]), verifier).json()["access_token"]
    stated = claims_of(token)["auth_time"]
    assert stated == math.floor(exact)

    # Within the window's last second as the token counts it (0.54 s before the exact end).
    server.advance(stated + window + 0.45 - server.now())
    params = {"identity": t.enrolling.username, "state": "enforced"}
    challenged = run(t, token, "Set-UserMfa", params)
    assert challenged.status_code == 401
    assert f"max_age={window}" in challenged.headers["www-authenticate"]

    # The client signs in again with that max_age: the authority must ask for the factor
    # (before, it found the sign-in recent enough and issued a token refused again).
    stepped = browser.get(authorize_url(t, verifier=verifier, resource=directory, max_age="60"))
    assert str(stepped.url).endswith("/login/mfa"), (stepped.status_code, stepped.headers)
    done = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(server)})
    assert done.status_code == 303
    fresh = redeem(t, _code_of(done.headers["location"]), verifier).json()["access_token"]
    assert run(t, fresh, "Set-UserMfa", params).status_code == 200


def test_a_window_under_a_minute_is_named_in_seconds(server: ServerProcess) -> None:
    t = make_tenant(server, step_up_window=30)
    token = admin_token(t)
    server.advance(45)
    challenged = run(
        t, token, "Set-UserMfa", {"identity": t.enrolling.username, "state": "enforced"}
    )
    assert challenged.status_code == 401
    assert "a second factor from the last 30 seconds" in challenged.headers["www-authenticate"]
    assert "0 minutes" not in challenged.text
