"""Terminal sign-in through the authorization challenge endpoint (first-party apps draft).

The password, then the one-time code, each a POST of the client; an authorization code at
the end, redeemed at the token endpoint with PKCE and no redirect URI (A3, T2, T3, decision
0014).
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import httpx
from sqlalchemy import select

from bastion.authority import challenge_sessions, factor_store, throttle
from bastion.authority.client_registration import register_client
from bastion.authority.grants.pkce_verification import s256
from bastion.authority.throttle import FREE_FAILURES, SOURCE_FREE_FAILURES
from bastion.store.schema import throttles, users, web_sessions
from tests.support.audit_log import events_of
from tests.support.browser import Browser, page_error
from tests.support.flows import (
    Org,
    Person,
    approve_device,
    device_code_request,
    device_sign_in,
    poll_token,
    refresh,
)
from tests.support.plane import run

SCOPE = "openid profile offline_access"


def challenge(t: Org, **data: str | None) -> httpx.Response:
    """One request to the endpoint; every answer must be uncacheable."""
    form = {"client_id": "bastion-cli", **data}
    response = httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge",
        data={k: v for k, v in form.items() if v is not None},
    )
    assert response.headers["cache-control"] == "no-store", response.headers
    assert response.headers["content-type"] == "application/json"
    return response


def start(t: Org, person: Person, verifier: str, **extra: str | None) -> httpx.Response:
    """The first request: user name, password, scope and the PKCE challenge."""
    form: dict[str, str | None] = {
        "username": person.username,
        "password": person.password,
        "scope": SCOPE,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    form.update(extra)
    return challenge(t, **form)


def redeem(t: Org, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "client_id": "bastion-cli"}
    if verifier is not None:
        data["code_verifier"] = verifier
    return httpx.post(f"{t.issuer}/oauth2/token", data={**data, **extra})


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def wrong_code(t: Org) -> str:
    good = t.admin.code(t.server)
    return "000000" if good != "000000" else "111111"


def recovery_codes_for(t: Org, person: Person) -> list[str]:
    auth = t.server.authority
    with auth.store.begin() as conn:
        user_id = conn.execute(
            select(users.c.id).where(users.c.upn == person.username)
        ).scalar_one()
        prepared = factor_store.prepare_recovery_codes(auth.hasher)
        factor_store.store_recovery_codes(
            conn, prepared, tenant_id=t.tenant.id, user_id=user_id, now=t.server.now()
        )
    return list(prepared.codes)


def test_discovery_lists_the_endpoint(t: Org) -> None:
    endpoint = t.discovery()["authorization_challenge_endpoint"]
    assert endpoint == f"{t.issuer}/oauth2/authorize-challenge"
    answer = httpx.post(endpoint, data={"client_id": "bastion-cli"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_password_only_user_gets_a_code_then_tokens(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = start(t, t.password_only, verifier, response_type="code")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"authorization_code", "iss", "known_client"}
    assert body["iss"] == t.issuer
    # the code has no redirect URI: none is sent to redeem it
    tokens = redeem(t, body["authorization_code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    result = tokens.json()
    id_claims = claims_of(result["id_token"])
    assert id_claims["amr"] == ["pwd"] and id_claims["acr"] == "urn:bastion:acr:1fa"
    # the tokens are alive: introspection knows the person, and the refresh token rotates
    out = t.server.cli(
        "client",
        "create",
        "--tenant",
        t.name,
        "reporting",
        "--name",
        "Reporting",
        "--confidential",
        "--grant-type",
        "refresh_token",
    ).stdout
    creds = ("reporting", json.loads(out)["client_secret"])
    seen = httpx.post(
        f"{t.issuer}/oauth2/introspect", data={"token": result["access_token"]}, auth=creds
    ).json()
    assert seen["active"] is True and seen["username"] == t.password_only.username
    assert refresh(t, result["refresh_token"]).status_code == 200
    # audited as the pages audit a sign-in, naming the client and the flow
    success = events_of(t, "sign_in.success")[-1]
    assert success.client_id == "bastion-cli" and success.data["flow"] == "authorization_challenge"
    assert success.data["amr"] == ["pwd"]
    assert t.password_only.password not in answer.text + tokens.text


def test_mfa_user_gives_the_code_after_the_password(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    first = start(t, t.admin, verifier, resource=t.audience("directory"))
    assert first.status_code == 403, first.text
    body = first.json()
    assert body["error"] == "insufficient_authorization" and body["required"] == "otp"
    assert "authenticator app" in body["error_description"]
    session = body["auth_session"]
    assert len(base64.urlsafe_b64decode(session + "=" * (-len(session) % 4))) >= 32
    # stored only as a keyed hash
    with t.server.authority.store.begin() as conn:
        rows = conn.execute(select(web_sessions).where(web_sessions.c.stage == "challenge")).all()
    assert rows and all(session not in repr(tuple(row)) for row in rows)
    second = challenge(t, auth_session=session, otp=t.admin.code(t.server))
    assert second.status_code == 200, second.text
    tokens = redeem(t, second.json()["authorization_code"], verifier).json()
    claims = claims_of(tokens["access_token"])
    assert claims["aud"] == t.audience("directory")
    assert claims["acr"] == "urn:bastion:acr:2fa" and {"pwd", "otp", "mfa"} <= set(claims["amr"])
    # the session behaves as a page sign-in: the command plane takes the token
    read = run(t, tokens["access_token"], "Get-User", {"identity": t.admin.username})
    assert read.status_code == 200, read.text
    success = events_of(t, "sign_in.success")[-1]
    assert success.data["amr"] == ["pwd", "otp", "mfa"] and success.client_id == "bastion-cli"


def test_recovery_code_instead_of_the_authenticator_code(t: Org) -> None:
    codes = recovery_codes_for(t, t.admin)
    verifier = secrets.token_urlsafe(48)
    session = start(t, t.admin, verifier).json()["auth_session"]
    answer = challenge(t, auth_session=session, recovery_code=codes[0])
    assert answer.status_code == 200, answer.text
    tokens = redeem(t, answer.json()["authorization_code"], verifier).json()
    claims = claims_of(tokens["id_token"])
    assert claims["amr"] == ["pwd", "mfa"] and claims["acr"] == "urn:bastion:acr:2fa"
    # single use: the same code again is refused, and the sign-in may go on with another
    session = start(t, t.admin, verifier).json()["auth_session"]
    again = challenge(t, auth_session=session, recovery_code=codes[0])
    assert again.status_code == 400
    body = again.json()
    assert body["error"] == "invalid_grant" and body["required"] == "recovery_code"
    assert "recovery code" in body["error_description"]
    assert (
        challenge(t, auth_session=body["auth_session"], recovery_code=codes[1]).status_code == 200
    )
    assert len(events_of(t, "notify.recovery_code_used")) == 2


def test_user_without_a_factor_is_sent_to_the_browser(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    # a wrong password says nothing about the account's MFA state
    wrong = start(t, t.enrolling, verifier, password="not the password")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    answer = start(t, t.enrolling, verifier)
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["error"] == "redirect_to_web" and "auth_session" not in body
    assert body["sign_in_uri"] == f"{t.issuer}/login"
    assert "register an authenticator app" in body["error_description"]
    assert body["sign_in_uri"] in body["error_description"]
    assert httpx.get(body["sign_in_uri"]).status_code == 200
    assert not events_of(t, "sign_in.success")


def test_wrong_password_and_unknown_user_get_the_same_answer(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    wrong = start(t, t.password_only, verifier, password="wrong password")
    unknown = start(t, t.password_only, verifier, username=f"nobody@{t.name}")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.content == unknown.content
    varying = {"x-request-id", "date"}
    assert {k: v for k, v in wrong.headers.items() if k not in varying} == {
        k: v for k, v in unknown.headers.items() if k not in varying
    }
    body = wrong.json()
    assert body["error"] == "invalid_grant" and "auth_session" not in body
    assert body["error_description"].startswith("The user name or password is incorrect.")
    failures = events_of(t, "sign_in.password_failure")
    assert len(failures) == 2
    assert all(e.client_id == "bastion-cli" for e in failures)
    assert all(e.data["flow"] == "authorization_challenge" for e in failures)


def test_disabled_account_is_refused_after_the_password(t: Org) -> None:
    t.server.cli("user", "disable", "--tenant", t.name, t.password_only.username)
    answer = start(t, t.password_only, secrets.token_urlsafe(48))
    assert answer.status_code == 400
    assert answer.json()["error"] == "access_denied"
    assert "disabled" in answer.json()["error_description"]


def test_wrong_codes_pause_the_authenticator_for_the_pages_too(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    session = start(t, t.admin, verifier).json()["auth_session"]
    for attempt in range(FREE_FAILURES):
        answer = challenge(t, auth_session=session, otp=wrong_code(t))
        assert answer.status_code == 400
        body = answer.json()
        assert body["error_description"].startswith("That code is not correct.")
        if attempt < FREE_FAILURES - 1:
            assert body["error"] == "invalid_grant" and body["required"] == "otp"
            session = body["auth_session"]
    # paused, and no recovery codes either: the sign-in cannot go on for now
    assert body["error"] == "access_denied" and "auth_session" not in body
    session = start(t, t.admin, verifier).json()["auth_session"]
    paused = challenge(t, auth_session=session, otp=t.admin.code(t.server))
    assert paused.status_code == 429 and paused.json()["error"] == "temporarily_unavailable"
    assert "Too many wrong authenticator codes." in paused.json()["error_description"]
    # the same counter as the sign-in pages (A3)
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/login")
    browser.submit(
        f"/t/{t.name}/login", {"username": t.admin.username, "password": t.admin.password}
    )
    page = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    assert page.status_code == 429 and page_error(page) == "Too many wrong authenticator codes."
    t.server.cli("user", "unlock", "--tenant", t.name, t.admin.username)
    assert challenge(t, auth_session=session, otp=t.admin.code(t.server)).status_code == 200


def test_password_failures_on_the_pages_count_here(t: Org) -> None:
    browser = Browser(t.server.base_url)
    for i in range(FREE_FAILURES):
        browser.get(f"/t/{t.name}/login")
        browser.submit(
            f"/t/{t.name}/login", {"username": t.password_only.username, "password": f"no-{i}"}
        )
    answer = start(t, t.password_only, secrets.token_urlsafe(48))
    assert answer.status_code == 429 and answer.json()["error"] == "temporarily_unavailable"
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["error_description"].startswith(
        "Too many failed sign-ins for this account or from this address."
    )


def test_failures_are_limited_per_source(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    for i in range(SOURCE_FREE_FAILURES):
        answer = start(t, t.password_only, verifier, username=f"guess-{i}@{t.name}")
        assert answer.status_code == 400
    limited = start(t, t.password_only, verifier)
    assert limited.status_code == 429
    assert limited.json()["error"] == "temporarily_unavailable"
    assert int(limited.headers["retry-after"]) > 0
    assert len(events_of(t, "rate_limit.sign_in")) == 1


def test_auth_session_is_single_use_short_lived_and_bound_to_its_client(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    first = start(t, t.admin, verifier).json()["auth_session"]
    retry = challenge(t, auth_session=first, otp=wrong_code(t)).json()
    second = retry["auth_session"]
    assert second != first
    spent = challenge(t, auth_session=first, otp=t.admin.code(t.server))
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_session"
    # another first-party client cannot use it
    auth = t.server.authority
    with auth.store.begin() as conn:
        register_client(
            conn,
            auth.keyring,
            tenant_id=t.tenant.id,
            client_id="other-cli",
            name="Other",
            redirect_uris=[],
            grant_types=["authorization_code"],
            confidential=False,
            first_party=True,
            now=t.server.now(),
        )
    other = challenge(t, client_id="other-cli", auth_session=second, otp=t.admin.code(t.server))
    assert other.status_code == 400 and other.json()["error"] == "invalid_session"
    # a changed PKCE challenge is refused
    changed = challenge(
        t, auth_session=second, otp=t.admin.code(t.server), code_challenge=s256("x" * 43)
    )
    assert changed.status_code == 400 and changed.json()["error"] == "invalid_request"
    done = challenge(t, auth_session=second, otp=t.admin.code(t.server))
    assert done.status_code == 200, done.text
    code = done.json()["authorization_code"]
    again = challenge(t, auth_session=second, otp=t.admin.code(t.server, offset_steps=1))
    assert again.json()["error"] == "invalid_session"
    # the code is bound to its client too
    assert redeem(t, code, verifier, client_id="other-cli").json()["error"] == "invalid_grant"
    # expired after its lifetime
    late = start(t, t.admin, verifier).json()["auth_session"]
    t.server.advance(challenge_sessions.LIFETIME + 1)
    expired = challenge(t, auth_session=late, otp=t.admin.code(t.server))
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_session"
    assert "Start again" in expired.json()["error_description"]


def test_only_first_party_clients(t: Org) -> None:
    t.server.cli(
        "client",
        "create",
        "--tenant",
        t.name,
        "third-party",
        "--name",
        "Third party",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--grant-type",
        "authorization_code",
    )
    verifier = secrets.token_urlsafe(48)
    refused = start(t, t.password_only, verifier, client_id="third-party")
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"
    unknown = start(t, t.password_only, verifier, client_id="nope")
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    # nothing was checked: no password failure is counted for either
    assert not events_of(t, "sign_in.password_failure")


def test_pkce_is_required_and_the_code_is_single_use(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    for missing in (
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
    ):
        answer = start(t, t.password_only, verifier, **missing)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        assert answer.json()["iss"] == t.issuer
    code = start(t, t.password_only, verifier).json()["authorization_code"]
    assert redeem(t, code, None).json()["error"] == "invalid_grant"
    assert redeem(t, code, secrets.token_urlsafe(48)).json()["error"] == "invalid_grant"
    with_redirect = redeem(t, code, verifier, redirect_uri="http://127.0.0.1:53117/callback")
    assert with_redirect.json()["error"] == "invalid_grant"
    first = redeem(t, code, verifier)
    assert first.status_code == 200, first.text
    reused = redeem(t, code, verifier)
    assert reused.json()["error"] == "invalid_grant"
    # reuse revokes what the code gave (T3)
    assert refresh(t, first.json()["refresh_token"]).json()["error"] == "invalid_grant"
    # and a code from here lives ten minutes
    late = start(t, t.password_only, verifier).json()["authorization_code"]
    t.server.advance(601)
    assert redeem(t, late, verifier).json()["error"] == "invalid_grant"


def test_bad_requests_say_what_is_wrong(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    cases: list[tuple[dict[str, str | None], str, str]] = [
        ({"password": ""}, "invalid_request", "username and password are required"),
        ({"otp": "123456"}, "invalid_request", "auth_session"),
        ({"auth_session": "x" * 43}, "invalid_request", "username and password"),
        ({"response_type": "token"}, "unsupported_response_type", "response_type"),
        ({"resource": "https://unknown.example/api"}, "invalid_target", "resource"),
        ({"scope": "openid admin"}, "invalid_scope", "scope"),
    ]
    for extra, error, words in cases:
        answer = start(t, t.password_only, verifier, **extra)
        assert answer.status_code == 400, (extra, answer.text)
        body = answer.json()
        assert body["error"] == error and words in body["error_description"], body
    both = challenge(t, auth_session="x" * 43, otp="123456", recovery_code="abcd")
    assert both.json()["error"] == "invalid_request"
    made_up = challenge(t, auth_session="x" * 43, otp="123456")
    assert made_up.json()["error"] == "invalid_session"
    # none of these touched an account
    assert not events_of(t, "sign_in.password_failure")


def pause(t: Org, person: Person, kind: str) -> None:
    """Block one of ``person``'s second factors, as enough wrong codes would."""
    auth = t.server.authority
    with auth.store.begin() as conn:
        user_id = conn.execute(
            select(users.c.id).where(users.c.upn == person.username)
        ).scalar_one()
        key = throttle.factor_key(t.tenant.id, user_id, kind)
        for _ in range(FREE_FAILURES):
            throttle.fail(conn, auth.settings, key, t.server.now())


def test_a_paused_authenticator_leaves_the_recovery_codes(t: Org) -> None:
    codes = recovery_codes_for(t, t.admin)
    pause(t, t.admin, throttle.OTP)
    verifier = secrets.token_urlsafe(48)
    first = start(t, t.admin, verifier).json()
    assert first["error"] == "insufficient_authorization" and first["required"] == "recovery_code"
    assert "paused" in first["error_description"]
    answer = challenge(t, auth_session=first["auth_session"], otp=t.admin.code(t.server))
    assert answer.status_code == 429
    assert "Or use a recovery code." in answer.json()["error_description"]
    # the 429 did not spend the auth_session: the recovery code goes on with it
    done = challenge(t, auth_session=first["auth_session"], recovery_code=codes[0])
    assert done.status_code == 200, done.text


def test_garbage_never_crashes_or_leaks(t: Org) -> None:
    url = f"{t.issuer}/oauth2/authorize-challenge"
    for form in (
        {},
        {"client_id": '\x00\n{"fake":1}'},
        {"client_id": "bastion-cli", "auth_session": "A" * 5000, "otp": "1" * 5000},
        {"client_id": "bastion-cli", "username": "x" * 5000, "password": "\x00"},
        {"client_id": "bastion-cli", "scope": "'; DROP TABLE users; --"},
    ):
        response = httpx.post(url, data=form)
        assert 400 <= response.status_code < 500, response.text
        assert "Traceback" not in response.text and "SELECT" not in response.text
        assert response.json()["error"]
        assert response.headers["cache-control"] == "no-store"
    for content, status in ((b"{not json", 400), (b"a=" + b"b" * 100_000, 413)):
        # over the OAuth endpoints' limit: refused while it streams (issue 9 item 3)
        response = httpx.post(url, content=content, headers={"content-type": "application/json"})
        assert response.status_code == status and response.json()["error"] == "invalid_request"
    unknown = httpx.post(
        f"{t.server.base_url}/t/no-such-tenant/oauth2/authorize-challenge",
        data={"client_id": "bastion-cli"},
    )
    assert unknown.status_code == 404 and unknown.headers["cache-control"] == "no-store"


# -- step-up with the auth_session of a token response (draft §6.1 and Appendix A.7) ------

TWO_FACTORS = "urn:bastion:acr:2fa"


def terminal_sign_in(t: Org, person: Person, **extra: str) -> dict[str, Any]:
    """A whole terminal sign-in (password, then the code when one is due); the tokens."""
    verifier = secrets.token_urlsafe(48)
    answer = start(t, person, verifier, **extra)
    if answer.status_code == 403:
        answer = challenge(t, auth_session=answer.json()["auth_session"], otp=person.code(t.server))
    assert answer.status_code == 200, answer.text
    tokens = redeem(t, answer.json()["authorization_code"], verifier)
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


def step_up(t: Org, auth_session: str, verifier: str, **extra: str | None) -> httpx.Response:
    """The first request of a step-up: the token response's auth_session, no credential."""
    form: dict[str, str | None] = {
        "auth_session": auth_session,
        "scope": SCOPE,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "max_age": "600",
        "acr_values": TWO_FACTORS,
    }
    form.update(extra)
    return challenge(t, **form)


def test_a_step_up_asks_only_the_second_factor_and_keeps_the_sign_in(t: Org) -> None:
    directory = t.audience("directory")
    tokens = terminal_sign_in(t, t.admin, resource=directory)
    handle = tokens["auth_session"]
    assert len(base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))) >= 32
    with t.server.authority.store.begin() as conn:  # stored only as a keyed hash
        rows = conn.execute(select(web_sessions).where(web_sessions.c.stage == "signed_in")).all()
    assert rows and all(handle not in repr(tuple(row)) for row in rows)
    t.server.advance(700)
    verifier = secrets.token_urlsafe(48)
    asked = step_up(t, handle, verifier, resource=directory)
    assert asked.status_code == 403, asked.text
    body = asked.json()
    assert body["error"] == "insufficient_authorization" and body["required"] == "otp"
    assert "recent second factor" in body["error_description"]
    assert body["auth_session"] != handle and body["iss"] == t.issuer
    done = challenge(t, auth_session=body["auth_session"], otp=t.admin.code(t.server))
    assert done.status_code == 200, done.text
    stepped = redeem(t, done.json()["authorization_code"], verifier)
    assert stepped.status_code == 200, stepped.text
    new = stepped.json()
    old_claims, claims = claims_of(tokens["access_token"]), claims_of(new["access_token"])
    assert claims["sid"] == old_claims["sid"] and claims["aud"] == directory
    assert claims["auth_time"] >= old_claims["auth_time"] + 700
    assert claims["acr"] == TWO_FACTORS and "otp" in claims["amr"]
    assert claims_of(new["id_token"])["auth_time"] == claims["auth_time"]
    # the next auth_session comes with the new tokens; the one used is gone
    assert new["auth_session"] not in (handle, body["auth_session"])
    assert step_up(t, handle, verifier).json()["error"] == "invalid_session"
    assert step_up(t, new["auth_session"], verifier).status_code == 403
    # audited as a step-up of the same session, naming the client and the flow
    record = events_of(t, "sign_in.step_up")[-1]
    assert record.client_id == "bastion-cli" and record.data["flow"] == "authorization_challenge"
    assert record.data["session_id"] == claims["sid"]
    assert len(events_of(t, "sign_in.success")) == 1
    # the command plane takes the stepped-up token for a sensitive command
    made = run(t, new["access_token"], "New-Group", {"name": "stepped"})
    assert made.status_code == 200, made.text
    removed = run(t, new["access_token"], "Remove-Group", {"identity": "stepped"})
    assert removed.status_code == 200, removed.text


def test_step_up_codes_count_against_the_same_limits(t: Org) -> None:
    tokens = terminal_sign_in(t, t.admin)
    t.server.advance(60)
    verifier = secrets.token_urlsafe(48)
    asked = step_up(t, tokens["auth_session"], verifier).json()
    wrong = challenge(t, auth_session=asked["auth_session"], otp=wrong_code(t))
    assert wrong.status_code == 400, wrong.text
    body = wrong.json()
    assert body["error"] == "invalid_grant" and body["required"] == "otp"
    assert body["auth_session"] != asked["auth_session"]
    failure = events_of(t, "sign_in.mfa_failure")[-1]
    assert failure.client_id == "bastion-cli" and failure.data["flow"] == "authorization_challenge"
    with t.server.authority.store.begin() as conn:
        counted = conn.execute(
            select(throttles.c.failures)
            .where(throttles.c.key.like("otp:%"))
            .where(throttles.c.tenant_id == t.tenant.id)
        ).scalar_one()
    assert counted == 1
    pause(t, t.admin, throttle.OTP)
    # a paused authenticator is paused here too (A3): not checked, the right code included
    paused = challenge(t, auth_session=body["auth_session"], otp=t.admin.code(t.server))
    assert paused.status_code == 429 and paused.json()["error"] == "temporarily_unavailable"
    assert int(paused.headers["retry-after"]) > 0


def test_the_auth_session_of_a_token_response_is_bound_to_its_sign_in(t: Org) -> None:
    tokens = terminal_sign_in(t, t.admin)
    handle = tokens["auth_session"]
    verifier = secrets.token_urlsafe(48)
    auth = t.server.authority
    with auth.store.begin() as conn:
        register_client(
            conn,
            auth.keyring,
            tenant_id=t.tenant.id,
            client_id="other-cli",
            name="Other",
            redirect_uris=[],
            grant_types=["authorization_code"],
            confidential=False,
            first_party=True,
            now=t.server.now(),
        )
    other = step_up(t, handle, verifier, client_id="other-cli")
    assert other.status_code == 400 and other.json()["error"] == "invalid_session"
    # it opens nothing by itself: a code sent with it is refused, as is a pending sign-in's
    # auth_session sent alone
    direct = challenge(t, auth_session=handle, otp=t.admin.code(t.server, offset_steps=1))
    assert direct.json()["error"] == "invalid_session"
    pending = start(t, t.admin, verifier).json()["auth_session"]
    assert step_up(t, pending, verifier).json()["error"] == "invalid_session"
    # PKCE is required as on the first request
    no_pkce = step_up(t, handle, verifier, code_challenge=None, code_challenge_method=None)
    assert no_pkce.json()["error"] == "invalid_request"
    bad_age = step_up(t, handle, verifier, max_age="soon")
    assert bad_age.json()["error"] == "invalid_request"
    assert step_up(t, handle, verifier).status_code == 403  # still usable
    # signing the client out (revoking its refresh token) ends it
    revoked = httpx.post(
        f"{t.issuer}/oauth2/revoke",
        data={"client_id": "bastion-cli", "token": tokens["refresh_token"]},
    )
    assert revoked.status_code == 200
    assert step_up(t, handle, verifier).json()["error"] == "invalid_session"
    # and it ends with its sign-in session (idle here)
    t.server.advance(31)  # the next time step: each code is accepted once
    later = terminal_sign_in(t, t.admin)
    t.server.advance(t.tenant.policy.idle_timeout + 1)
    ended = step_up(t, later["auth_session"], verifier)
    assert ended.status_code == 400 and ended.json()["error"] == "invalid_session"


def test_only_sign_ins_give_an_auth_session_and_refreshes_say_when_they_end(t: Org) -> None:
    tokens = terminal_sign_in(t, t.admin)
    policy = t.tenant.policy
    assert tokens["refresh_token_expires_in"] == min(policy.session_lifetime, policy.idle_timeout)
    renewed = refresh(t, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert "auth_session" not in renewed.json()
    assert 0 < renewed.json()["refresh_token_expires_in"] <= policy.idle_timeout


def test_accounts_without_a_usable_second_factor_cannot_step_up_here(t: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    plain = terminal_sign_in(t, t.password_only)
    refused = step_up(t, plain["auth_session"], verifier)
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"
    assert "no second factor" in refused.json()["error_description"]
    tokens = terminal_sign_in(t, t.admin)
    with t.server.authority.store.begin() as conn:
        conn.execute(users.update().where(users.c.upn == t.admin.username).values(enabled=False))
    disabled = step_up(t, tokens["auth_session"], verifier)
    assert disabled.status_code == 400 and disabled.json()["error"] == "access_denied"
    assert "disabled" in disabled.json()["error_description"]


def test_other_clients_get_no_auth_session(t: Org) -> None:
    auth = t.server.authority
    with auth.store.begin() as conn:
        register_client(
            conn,
            auth.keyring,
            tenant_id=t.tenant.id,
            client_id="tv-app",
            name="TV app",
            redirect_uris=[],
            grant_types=["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            confidential=False,
            first_party=False,
            now=t.server.now(),
        )
    start_device = device_code_request(t, client_id="tv-app")
    browser = Browser(t.server.base_url)
    assert approve_device(browser, t, t.admin, start_device["user_code"]).status_code == 200
    tokens = poll_token(t, start_device["device_code"], client_id="tv-app").json()
    assert "refresh_token" in tokens and "auth_session" not in tokens
    assert tokens["refresh_token_expires_in"] > 0
    # bastion-cli gets one from the device grant too
    assert "auth_session" in device_sign_in(t, t.password_only)
