"""Throttling without denial of service (A3, A6, T10, L1; issue 9 item 5; decision 0019).

Failed sign-ins are counted per account name, per second factor and per source address, in
the database, and shared by the sign-in pages, the authorization challenge endpoint, the
device pages and the token endpoint. A blocked attempt gets 429 with ``Retry-After`` and is
not checked; blocks lift by themselves (the tests move the injected clock, never sleep); a
browser that signed the user in before is not held to its address's counter; unknown and
real names are answered alike.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import bastion
from bastion.authority.grants.pkce_verification import s256
from bastion.authority.throttle import FREE_FAILURES, SOURCE_FREE_FAILURES
from bastion.client import ClientError, SignInFailed
from bastion.store.schema import throttles
from tests.client.players import Player
from tests.support.audit_log import events_of
from tests.support.browser import Browser, page_error
from tests.support.flows import (
    Org,
    Person,
    device_code_request,
    give_recovery_codes,
    sign_in_pages,
)

SCOPE = "openid profile offline_access"
#: the defaults: attempt_limit and lockout_seconds (bastion.core.config.Settings)
LIMIT = 10
LOCKOUT = 900


def login(browser: Browser, t: Org, username: str, password: str) -> httpx.Response:
    browser.get(f"/t/{t.name}/login")
    return browser.submit(f"/t/{t.name}/login", {"username": username, "password": password})


def signed_in_browser(t: Org, person: Person) -> Browser:
    """A browser that has signed ``person`` in (and so is known to the account)."""
    browser = Browser(t.server.base_url)
    done = sign_in_pages(browser, t, person, response=browser.get(f"/t/{t.name}/login"))
    assert done.status_code == 200 and "signed in" in done.text, done.text[:300]
    return browser


def challenge(t: Org, **data: str) -> httpx.Response:
    return httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge", data={"client_id": "bastion-cli", **data}
    )


def start(t: Org, username: str, password: str, **extra: str) -> httpx.Response:
    verifier = secrets.token_urlsafe(48)
    return challenge(
        t,
        username=username,
        password=password,
        scope=SCOPE,
        code_challenge=s256(verifier),
        code_challenge_method="S256",
        **extra,
    )


def bad_code_redemption(t: Org) -> httpx.Response:
    return httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": secrets.token_urlsafe(32),
            "code_verifier": secrets.token_urlsafe(48),
            "client_id": "bastion-cli",
        },
    )


def wrong_code(t: Org) -> str:
    good = t.admin.code(t.server)
    return "000000" if good != "000000" else "111111"


def fail_until(t: Org, count: int, attempt: Any) -> None:
    """Make ``count`` failed attempts, waiting out (by the clock) each block on the way."""
    failed = 0
    while failed < count:
        answer = attempt(failed)
        if answer.status_code == 429:
            t.server.advance(int(answer.headers["retry-after"]))
            continue
        assert answer.status_code in (400, 401), answer.text[:300]
        failed += 1


class WrongCodes(Player):
    """A person who types the right password, then always the same wrong code (quickly:
    the clock does not move, so no pause lifts on the way)."""

    def code(self) -> str:
        return wrong_code(self.org)


# -- the account ---------------------------------------------------------------------------


def test_the_global_administrator_is_not_locked_out_for_good(t: Org) -> None:
    owner = signed_in_browser(t, t.admin)
    attacker = Browser(t.server.base_url)
    fail_until(t, LIMIT, lambda i: login(attacker, t, t.admin.username, f"guess-{i}"))
    # the cap is reached: every browser waits the whole lockout, the owner's known one too,
    # and the right password is not even checked
    blocked = login(owner, t, t.admin.username, t.admin.password)
    assert blocked.status_code == 429
    assert LOCKOUT - 60 < int(blocked.headers["retry-after"]) <= LOCKOUT
    assert page_error(blocked) == "Too many failed sign-ins for this account or from this address."
    assert re.search(r"Try again in 1[45] minutes\.", blocked.text)
    assert not events_of(t, "sign_in.success")[1:]
    # ...and it lifts by itself: no administrator needed
    t.server.advance(LOCKOUT)
    again = sign_in_pages(owner, t, t.admin, response=owner.get(f"/t/{t.name}/login"))
    assert again.status_code == 200 and "signed in" in again.text
    # a success starts the count again from zero
    with t.server.authority.store.begin() as conn:
        keys = conn.execute(
            select(throttles.c.key).where(throttles.c.key.like(f"pwd:{t.tenant.id}:%"))
        ).all()
    assert keys == []
    # L1: each block began with a lockout record; each block's first refusal was recorded once
    lockouts = events_of(t, "sign_in.lockout")
    assert [e.data["failures"] for e in lockouts if e.data["counter"] == "password"] == list(
        range(FREE_FAILURES, LIMIT + 1)
    )
    hits = events_of(t, "rate_limit.sign_in")
    assert len(hits) == LIMIT - FREE_FAILURES + 1
    assert all(e.outcome == "denied" and e.data["retry_after"] > 0 for e in hits)


def test_each_failure_beyond_the_cap_blocks_the_whole_lockout_again(t: Org) -> None:
    browser = Browser(t.server.base_url)
    fail_until(t, LIMIT, lambda i: login(browser, t, t.password_only.username, f"no-{i}"))
    t.server.advance(LOCKOUT)
    again = login(browser, t, t.password_only.username, "still wrong")
    assert again.status_code == 401
    blocked = login(browser, t, t.password_only.username, t.password_only.password)
    assert blocked.status_code == 429
    assert LOCKOUT - 60 < int(blocked.headers["retry-after"]) <= LOCKOUT


def test_an_operator_lifts_a_block_from_the_command_line(t: Org) -> None:
    browser = Browser(t.server.base_url)
    fail_until(t, LIMIT, lambda i: login(browser, t, t.password_only.username, f"no-{i}"))
    assert login(browser, t, t.password_only.username, t.password_only.password).status_code == 429
    t.server.cli("user", "unlock", "--tenant", t.name, t.password_only.username)
    done = login(browser, t, t.password_only.username, t.password_only.password)
    assert done.status_code == 200 and "signed in" in done.text
    assert len(events_of(t, "user.unlocked")) == 1


def test_unknown_and_real_names_get_the_same_answers(t: Org) -> None:
    real, unknown = t.password_only.username, f"nobody@{t.name}"
    first, second = Browser(t.server.base_url), Browser(t.server.base_url)

    # The server's clock runs between two requests: a wait may read one second less in the
    # second answer, so waits are compared to the second and left out of the text.
    def waits(text: str) -> str:
        return re.sub(r"\d+ (second|minute|hour)s?", r"N \1s", text)

    def same_wait(x: httpx.Response, y: httpx.Response) -> bool:
        wx, wy = x.headers.get("retry-after"), y.headers.get("retry-after")
        return (wx is None) == (wy is None) and (wx is None or abs(int(wx) - int(wy)) <= 1)

    def visible(response: httpx.Response, name: str) -> tuple[Any, ...]:
        text = re.sub(r'name="csrf" value="[^"]+"', "", response.text).replace(name, "NAME")
        return response.status_code, waits(text)

    for i in range(FREE_FAILURES + 3):
        a = login(first, t, real, f"wrong-{i}")
        b = login(second, t, unknown, f"wrong-{i}")
        assert visible(a, real) == visible(b, unknown), i
        assert same_wait(a, b), (a.headers, b.headers)
        c = start(t, real, f"wrong-{i}")
        d = start(t, unknown, f"wrong-{i}")
        assert (c.status_code, waits(c.text)) == (d.status_code, waits(d.text))
        assert same_wait(c, d), (c.headers, d.headers)
        if a.status_code == 429:
            t.server.advance(int(a.headers["retry-after"]))
    # never a word that only a real account would say
    for e in events_of(t, "rate_limit.sign_in"):
        assert "locked" not in str(e.data)


# -- the source address, shared by every surface ------------------------------------------


def test_a_sprayed_address_is_refused_on_every_surface_but_a_known_browser_is_not(
    t: Org,
) -> None:
    owner = signed_in_browser(t, t.password_only)
    known = start(t, t.password_only.username, t.password_only.password).json().get("known_client")
    spray = Browser(t.server.base_url)
    third = SOURCE_FREE_FAILURES // 3
    for i in range(third):  # passwords sprayed at the pages...
        assert login(spray, t, f"user{i}@{t.name}", "Winter2026!").status_code == 401
    for i in range(third):  # ...at the challenge endpoint...
        assert start(t, f"other{i}@{t.name}", "Winter2026!").status_code == 400
    for _ in range(SOURCE_FREE_FAILURES - 2 * third):  # ...and codes at the token endpoint
        assert bad_code_redemption(t).status_code == 400
    # the address is blocked everywhere, whatever surface or account is tried next
    fresh = Browser(t.server.base_url)
    page = login(fresh, t, t.password_only.username, t.password_only.password)
    assert page.status_code == 429 and int(page.headers["retry-after"]) > 0
    terminal = start(t, t.password_only.username, t.password_only.password)
    assert terminal.status_code == 429 and terminal.json()["error"] == "temporarily_unavailable"
    assert int(terminal.headers["retry-after"]) > 0
    # the token endpoint refuses the one guessable credential it takes, a client secret...
    guessed = httpx.post(
        f"{t.issuer}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("reporting", "guessed-secret"),
    )
    assert guessed.status_code == 429 and int(guessed.headers["retry-after"]) > 0
    # ...but still checks codes and refresh tokens (256 random bits): a neighbour behind the
    # same address must not stop a client from redeeming its code or renewing its sign-in
    assert bad_code_redemption(t).json()["error"] == "invalid_grant"
    fresh.get(f"/t/{t.name}/device")
    device = fresh.submit(f"/t/{t.name}/device", {"user_code": "BCDF-GHJK"})
    assert device.status_code == 429 and "retry-after" in device.headers
    # the owner's browser and client, which signed this user in before, still get through
    again = login(owner, t, t.password_only.username, t.password_only.password)
    assert again.status_code == 200 and "signed in" in again.text
    assert known is not None
    through = start(t, t.password_only.username, t.password_only.password, known_client=known)
    assert through.status_code == 200, through.text
    # ...but a known value proves nothing for another account
    other = start(t, t.admin.username, t.admin.password, known_client=known)
    assert other.status_code == 429


def test_a_known_browser_still_counts_against_the_account(t: Org) -> None:
    owner = signed_in_browser(t, t.password_only)
    fail_until(t, FREE_FAILURES, lambda i: login(owner, t, t.password_only.username, "no"))
    assert login(owner, t, t.password_only.username, t.password_only.password).status_code == 429


def test_the_device_authorization_endpoint_is_throttled(t: Org) -> None:
    for _ in range(30):
        device_code_request(t)
    refused = httpx.post(
        f"{t.issuer}/oauth2/devicecode", data={"client_id": "bastion-cli", "scope": SCOPE}
    )
    assert refused.status_code == 429 and refused.json()["error"] == "temporarily_unavailable"
    assert 0 < int(refused.headers["retry-after"]) <= 900
    httpx.post(f"{t.issuer}/oauth2/devicecode", data={"client_id": "bastion-cli"})
    assert len(events_of(t, "rate_limit.device_authorization")) == 1
    t.server.advance(900)
    device_code_request(t)


# -- device codes (T10) --------------------------------------------------------------------


def test_a_right_device_code_is_not_refused_for_others_wrong_ones(t: Org) -> None:
    pending = device_code_request(t)
    attacker = Browser(t.server.base_url)
    attacker.get(f"/t/{t.name}/device")
    for i in range(5):
        wrong = attacker.submit(f"/t/{t.name}/device", {"user_code": f"BCDF-GHJ{'KLMNP'[i]}"})
        assert wrong.status_code == 400
    # T10: the sixth wrong entry from this address within the code's lifetime is refused
    sixth = attacker.submit(f"/t/{t.name}/device", {"user_code": "BCDF-GHJQ"})
    assert sixth.status_code == 429
    # the owner, from the same address, in a browser that is signed in: not refused
    owner = signed_in_browser(t, t.admin)
    owner.get(f"/t/{t.name}/device")
    entered = owner.submit(f"/t/{t.name}/device", {"user_code": pending["user_code"]})
    assert entered.status_code == 200 and "/device/confirm" in str(entered.url), entered.text[:300]
    assert pending["user_code"] in entered.text
    # the attacker's refusal said when to come back
    assert int(sixth.headers["retry-after"]) > 0


# -- second factors: tries left, then a pause -----------------------------------------------


def test_after_the_password_the_terminal_says_how_many_codes_are_left(t: Org) -> None:
    first = start(t, t.admin.username, t.admin.password).json()
    session = first["auth_session"]
    for left in range(FREE_FAILURES - 1, 0, -1):
        answer = challenge(t, auth_session=session, otp=wrong_code(t)).json()
        assert answer["error"] == "invalid_grant"
        tries = "1 try is" if left == 1 else f"{left} tries are"
        assert f"{tries} left before a pause." in answer["error_description"]
        session = answer["auth_session"]
    last = challenge(t, auth_session=session, otp=wrong_code(t))
    # no recovery codes: the sign-in ends, saying when to come back
    assert last.status_code == 400 and last.json()["error"] == "access_denied"
    assert "No tries are left for now. Try again in 30 seconds" in last.json()["error_description"]
    # while paused, even the right code is not checked
    session = start(t, t.admin.username, t.admin.password).json()["auth_session"]
    paused = challenge(t, auth_session=session, otp=t.admin.code(t.server))
    assert paused.status_code == 429 and 0 < int(paused.headers["retry-after"]) <= 30
    # the same counter as the pages'
    browser = Browser(t.server.base_url)
    login(browser, t, t.admin.username, t.admin.password)
    page = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    assert page.status_code == 429 and 0 < int(page.headers["retry-after"]) <= 30
    t.server.advance(30)
    # the auth_session the 429 did not spend works once the pause is over
    done = challenge(t, auth_session=session, otp=t.admin.code(t.server))
    assert done.status_code == 200, done.text


def test_the_pages_say_how_many_codes_are_left(t: Org) -> None:
    browser = Browser(t.server.base_url)
    login(browser, t, t.admin.username, t.admin.password)
    wrong = browser.submit(f"/t/{t.name}/login/mfa", {"code": wrong_code(t)})
    assert wrong.status_code == 401
    assert page_error(wrong) == "That code is not correct."
    assert f"{FREE_FAILURES - 1} tries are left before a pause." in wrong.text


def test_wrong_recovery_codes_pause_recovery_and_lift_by_themselves(t: Org) -> None:
    codes = give_recovery_codes(t, t.admin)
    browser = Browser(t.server.base_url)
    login(browser, t, t.admin.username, t.admin.password)
    for _ in range(FREE_FAILURES):
        wrong = browser.submit(f"/t/{t.name}/login/mfa", {"recovery_code": "abcd-efghjkm-npqrstu"})
        assert wrong.status_code == 401
    paused = browser.submit(f"/t/{t.name}/login/mfa", {"recovery_code": codes[0]})
    assert paused.status_code == 429 and page_error(paused) == "Too many wrong recovery codes."
    t.server.advance(int(paused.headers["retry-after"]))
    ok = browser.submit(f"/t/{t.name}/login/mfa", {"recovery_code": codes[0]})
    assert ok.status_code == 200 and "signed in" in ok.text


def test_a_terminal_sign_in_with_wrong_codes_ends_with_the_servers_message(
    t: Org, tmp_path: Path
) -> None:
    give_recovery_codes(t, t.admin)
    # the right password, then a code of another authenticator, typed again and again
    player = WrongCodes(t, Person(t.admin.username, t.admin.password))
    with pytest.raises(SignInFailed) as caught:
        bastion.connect(
            t.server.base_url, t.name, method="terminal", prompt=player, config_dir=tmp_path
        )
    message = str(caught.value)
    assert "more than" not in message
    assert "No tries are left for now. Try again in 30 seconds" in message
    # the authenticator code five times, then (it paused) a recovery code five times
    assert len(player.asked) == 2 + 2 * FREE_FAILURES
    assert any("4 tries are left before a pause" in shown for shown in player.shown)


def test_the_clients_terminal_sign_in_is_known_next_time_from_a_sprayed_address(
    t: Org, tmp_path: Path
) -> None:
    """The library keeps the authority's ``known_client`` in its encrypted cache and shows
    it with the next password, so its own user gets through an address that others have
    sprayed (decision 0019); a new client from that address does not."""
    player = Player(t, t.password_only)
    first = bastion.connect(
        t.server.base_url,
        t.name,
        method="terminal",
        prompt=player,
        config_dir=tmp_path / "mine",
        retries=0,  # a pause must show at once, not be waited out
    )
    for i in range(SOURCE_FREE_FAILURES):
        assert start(t, f"other{i}@{t.name}", "Winter2026!").status_code == 400
    # a new client from the sprayed address is paused (and told to wait, not retried here)...
    with pytest.raises(ClientError) as paused:
        bastion.connect(
            t.server.base_url,
            t.name,
            method="terminal",
            prompt=Player(t, t.password_only),
            config_dir=tmp_path / "new",
            retries=0,
        )
    assert "try again" in str(paused.value).lower(), paused.value
    # ...the one that signed this user in before signs in again, password and all
    player.asked.clear()
    first.sign_in(force=True)
    assert [q.split(" ")[0] for q in player.asked] == ["User", "Password"]
