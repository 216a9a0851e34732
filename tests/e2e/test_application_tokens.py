"""Applications at the token endpoint of a real server: the client credentials grant with
``private_key_jwt`` (RFC 7523 section 2.2), with a registered certificate or a federated
credential, each refusal an ``invalid_client`` that says what did not match, the access
token's claims, and the audit record of every sign-in. Applications, certificates and
credentials are made in process on the server's store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from joserfc.jwk import KeySet

from bastion.authority import throttle
from bastion.authority.token_validation import validate_access_token
from bastion.directory import applications
from bastion.directory.applications import Application
from tests.support.applications import (
    ASSERTION_TYPE,
    KeyPair,
    assertion,
    make_certificate,
    stand_in_issuer,
)
from tests.support.audit_log import events_of
from tests.support.flows import Org

_RSA = make_certificate("RSA")
_RSA_NEXT = make_certificate("RSA")
_EC = make_certificate("EC")
_STRANGER = make_certificate("RSA")


def token_endpoint(t: Org) -> str:
    return f"{t.issuer}/oauth2/token"


def new_app(t: Org, *certs: KeyPair, name: str = "Nightly export") -> Application:
    with t.server.authority.store.begin() as conn:
        app = applications.create_application(
            conn, tenant_id=t.tenant.id, display_name=name, now=t.server.now()
        )
        for pair in certs:
            add_certificate(t, app, pair, conn=conn)
    return app


def add_certificate(t: Org, app: Application, pair: KeyPair, conn: Any = None) -> None:
    parsed = applications.parse_certificate(pair.certificate_pem)
    if conn is not None:
        applications.add_certificate(conn, app, parsed, t.server.now())
        return
    with t.server.authority.store.begin() as tx:
        applications.add_certificate(tx, app, parsed, t.server.now())


def ask(t: Org, app_id: str | None, client_assertion: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        "scope": f"{t.audience('mail')}/.default",
        "client_info": "1",  # MSAL sends it; unknown parameters are ignored
    } | form
    if app_id is not None:
        data["client_id"] = app_id
    return httpx.post(token_endpoint(t), data=data, timeout=30)


def signed(t: Org, app: Application, pair: KeyPair, **kwargs: Any) -> str:
    return assertion(pair, app.app_id, token_endpoint(t), t.server.now(), **kwargs)


def verified(t: Org, token: str, audience: str) -> dict[str, Any]:
    jwks = KeySet.import_key_set(httpx.get(t.discovery()["jwks_uri"]).json())
    return validate_access_token(
        token, issuer=t.issuer, audience=audience, keys=lambda _r: jwks, now=t.server.now()
    )


def refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client", body
    for word in words:
        assert word in body["error_description"], body
    assert "Traceback" not in response.text
    return str(body["error_description"])


def test_a_certificate_assertion_gets_an_application_token(t: Org) -> None:
    app = new_app(t, _RSA, _EC)
    mail = t.audience("mail")
    for pair, alg, header in (
        (_RSA, "RS256", {"x5t": _RSA.x5t()}),
        (_RSA, "PS256", {"x5t#S256": _RSA.x5t_s256(padded=False)}),
        (_EC, "ES256", {"kid": _EC.sha256_hex}),
    ):
        response = ask(t, app.app_id, signed(t, app, pair, alg=alg, header=header))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert (body["token_type"], body["scope"]) == ("Bearer", f"{mail}/.default")
        assert body["expires_in"] == t.tenant.policy.access_token_lifetime
        claims = verified(t, body["access_token"], mail)
        assert (claims["idtyp"], claims["sub"], claims["client_id"], claims["azp"]) == (
            "app",
            app.id,
            app.app_id,
            app.app_id,
        )
        assert (claims["aud"], claims["tid"], claims["app_displayname"]) == (
            mail,
            t.tenant.id,
            "Nightly export",
        )
        assert not {"sid", "amr", "acr", "auth_time", "preferred_username"} & set(claims)

    records = events_of(t, "sign_in.application")
    assert [r.outcome for r in records] == ["success"] * 3
    first = records[0]
    assert (first.actor_id, first.actor_name, first.client_id, first.source) == (
        app.id,
        "Nightly export",
        app.app_id,
        "127.0.0.1",
    )
    assert first.data["thumbprint"] == _RSA.sha256_hex
    assert first.data["audience"] == mail
    assert records[2].data["thumbprint"] == _EC.sha256_hex


def test_resource_names_the_service_and_person_scopes_are_refused(t: Org) -> None:
    app = new_app(t, _RSA)
    sites = t.audience("sites")
    response = ask(t, app.app_id, signed(t, app, _RSA), scope="", resource=sites)
    assert response.status_code == 200, response.text
    assert verified(t, response.json()["access_token"], sites)["aud"] == sites
    for scope in (f"{sites}/.default openid", "offline_access", ""):
        response = ask(t, app.app_id, signed(t, app, _RSA), scope=scope)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_scope"


def test_the_grant_is_for_applications_and_applications_for_the_grant(t: Org) -> None:
    public = httpx.post(
        token_endpoint(t),
        data={
            "grant_type": "client_credentials",
            "client_id": "bastion-cli",
            "scope": f"{t.audience('mail')}/.default",
        },
    )
    assert public.status_code == 400 and public.json()["error"] == "unauthorized_client"
    app = new_app(t, _RSA)
    other_grant = ask(t, app.app_id, signed(t, app, _RSA), grant_type="refresh_token")
    assert other_grant.status_code == 400
    assert other_grant.json()["error"] == "unauthorized_client"
    both = ask(t, app.app_id, signed(t, app, _RSA), client_secret="s3cret")
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_assertions_out_of_their_lifetime_or_key_are_refused_and_counted(t: Org) -> None:
    app = new_app(t, _RSA)
    now = t.server.now()
    key = throttle.source_key(t.tenant.id, "127.0.0.1")
    with t.server.authority.store.begin() as conn:
        before = throttle.state(conn, key, now).failures

    past = assertion(_RSA, app.app_id, token_endpoint(t), now - 700, lifetime=600)
    refused(ask(t, app.app_id, past), "expired")
    ahead = signed(t, app, _RSA, lifetime=3600)
    refused(ask(t, app.app_id, ahead), "at most 600 seconds")
    forged = signed(t, app, _RSA, signing_key=_STRANGER.key)
    refused(ask(t, app.app_id, forged), "signature does not verify")
    unregistered = assertion(_STRANGER, app.app_id, token_endpoint(t), now)
    refused(ask(t, app.app_id, unregistered), "never registered, or it was removed")
    elsewhere = assertion(_RSA, app.app_id, "https://elsewhere.example/token", now)
    refused(ask(t, app.app_id, elsewhere), "aud")
    refused(ask(t, None, signed(t, app, _RSA, sub="someone")), "sub")

    with t.server.authority.store.begin() as conn:
        assert throttle.state(conn, key, t.server.now()).failures == before + 6
    failures = [r for r in events_of(t, "sign_in.application") if r.outcome == "failure"]
    assert [r.data["reason"] for r in failures] == [
        "outside_lifetime",
        "outside_lifetime",
        "bad_signature",
        "unknown_key",
        "audience_mismatch",
        "subject_mismatch",
    ]
    assert {(r.actor_id, r.client_id) for r in failures} == {(app.id, app.app_id)}


def test_an_expired_certificate_is_refused_naming_it(t: Org) -> None:
    now = t.server.now()
    short = make_certificate("RSA", not_before=now - 3600, not_after=now + 120)
    app = new_app(t, short)
    assert ask(t, app.app_id, signed(t, app, short)).status_code == 200
    t.server.advance(180)
    refused(ask(t, app.app_id, signed(t, app, short)), short.sha256_hex, "expired on")


def test_two_certificates_overlap_and_the_removed_one_stops(t: Org) -> None:
    app = new_app(t, _RSA)
    add_certificate(t, app, _RSA_NEXT)
    assert ask(t, app.app_id, signed(t, app, _RSA)).status_code == 200
    assert ask(t, app.app_id, signed(t, app, _RSA_NEXT)).status_code == 200
    with t.server.authority.store.begin() as conn:
        assert applications.remove_certificate(conn, app, _RSA.sha256_hex, t.server.now())
    refused(ask(t, app.app_id, signed(t, app, _RSA)), "removed")
    assert ask(t, app.app_id, signed(t, app, _RSA_NEXT)).status_code == 200


def test_a_disabled_application_gets_no_token(t: Org) -> None:
    app = new_app(t, _RSA)
    with t.server.authority.store.begin() as conn:
        applications.update_application(conn, app, enabled=False)
    refused(ask(t, app.app_id, signed(t, app, _RSA)), "disabled")


def test_allowed_networks_refuse_a_request_from_outside_them(t: Org) -> None:
    app = new_app(t, _RSA)
    with t.server.authority.store.begin() as conn:
        app = applications.update_application(conn, app, allowed_networks=["10.0.0.0/8"])
    refused(ask(t, app.app_id, signed(t, app, _RSA)), "127.0.0.1", "allowed networks")
    with t.server.authority.store.begin() as conn:
        app = applications.update_application(conn, app, allowed_networks=["127.0.0.0/8"])
    assert ask(t, app.app_id, signed(t, app, _RSA)).status_code == 200


def test_a_federated_credential_gets_a_token_for_its_subject_only(t: Org) -> None:
    app = new_app(t)
    with stand_in_issuer() as issuer:
        with t.server.authority.store.begin() as conn:
            applications.add_federated_credential(
                conn,
                app,
                issuer=issuer.url,
                subject="system:serviceaccount:jobs:export",
                audience="api://bastion",
                now=t.server.now(),
            )
        now = t.server.now()
        good = issuer.token("system:serviceaccount:jobs:export", "api://bastion", now)
        response = ask(t, app.app_id, good)
        assert response.status_code == 200, response.text
        claims = verified(t, response.json()["access_token"], t.audience("mail"))
        assert (claims["idtyp"], claims["sub"], claims["client_id"]) == ("app", app.id, app.app_id)
        assert len(issuer.fetches) == 1

        other = issuer.token("system:serviceaccount:jobs:other", "api://bastion", now)
        refused(ask(t, app.app_id, other), "subject")
        wrong_aud = issuer.token("system:serviceaccount:jobs:export", "api://else", now)
        refused(ask(t, app.app_id, wrong_aud), "aud")
        too_long = issuer.token(
            "system:serviceaccount:jobs:export", "api://bastion", now, lifetime=7200
        )
        refused(ask(t, app.app_id, too_long), "at most 3600 seconds")
        forged = issuer.token(
            "system:serviceaccount:jobs:export", "api://bastion", now, key=_STRANGER.key
        )
        refused(ask(t, app.app_id, forged), "signature")
        assert len(issuer.fetches) == 1  # the cached keys served every check

    record = [r for r in events_of(t, "sign_in.application") if r.outcome == "success"][-1]
    assert record.data["credential"] == "federated"
    assert record.data["federated_issuer"] == issuer.url
    assert record.data["federated_subject"] == "system:serviceaccount:jobs:export"


def test_an_unregistered_issuer_is_never_fetched(t: Org) -> None:
    app = new_app(t)
    with stand_in_issuer() as issuer:
        token = issuer.token("anyone", "api://bastion", t.server.now())
        refused(ask(t, app.app_id, token), "is not the issuer of a federated credential")
        assert issuer.fetches == []


def test_discovery_names_private_key_jwt_and_its_algorithms(t: Org) -> None:
    document = t.discovery()
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == [
        "PS256",
        "RS256",
        "ES256",
    ]
    assert "client_credentials" in document["grant_types_supported"]


@pytest.mark.parametrize("junk", ["", "a.b", "x" * 20000])
def test_a_malformed_assertion_is_a_clear_error(t: Org, junk: str) -> None:
    response = ask(t, "00000000-0000-4000-8000-000000000000", junk)
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_request", "invalid_client")
    assert "Traceback" not in response.text
