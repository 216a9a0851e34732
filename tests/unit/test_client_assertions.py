"""Applications' client assertions, checked in process with the real store: how the key is
found, every refusal and what it says, federated tokens with a stand-in issuer's keys, and
what makes an application's access token stop counting."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from sqlalchemy import select

from bastion.authority import federated_keys as fk
from bastion.authority.application_tokens import check_application_token
from bastion.authority.client_assertions import (
    AssertionRefused,
    AuthenticatedApplication,
    authenticate_application,
    federated_issuer,
    parse_assertion,
    read_assertion,
    record_refusal,
    record_sign_in,
    thumbprints_named,
)
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.errors import InvalidRequest, InvalidToken
from bastion.directory import applications
from bastion.directory.applications import Application
from bastion.directory.tenants import Tenant
from bastion.server.bootstrap import new_tenant
from bastion.server.context import ServerContext
from bastion.store.schema import audit_events
from tests.support.applications import KeyPair, assertion, make_certificate, sign

ISSUER = "https://bastion.test/t/acme"
TOKEN_ENDPOINT = ISSUER + "/oauth2/token"
AUDIENCES = (TOKEN_ENDPOINT, ISSUER)
FED_ISSUER = "https://ci.example/oidc"
FED_SUBJECT = "repo:contoso/jobs:ref:refs/heads/main"
FED_AUDIENCE = "api://bastion"
SOURCE = "127.0.0.1"

_RSA = make_certificate("RSA")
_EC = make_certificate("EC")
_OTHER = make_certificate("RSA")
_FED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class World:
    auth: ServerContext
    tenant: Tenant
    app: Application
    rsa: KeyPair
    ec: KeyPair
    clock: FrozenClock
    keys: fk.FederatedKeys
    jwks_fetches: list[str]

    @property
    def now(self) -> float:
        return self.clock.now()

    def check(self, token: str, *, client_id: str = "", source: str = SOURCE) -> Any:
        with self.auth.store.begin() as conn:
            return authenticate_application(
                conn,
                tenant_id=self.tenant.id,
                client_id=client_id,
                assertion=parse_assertion(token),
                audiences=AUDIENCES,
                source=source,
                now=self.now,
                federated_keys=self.keys,
            )

    def refused(self, token: str, **kwargs: Any) -> AssertionRefused:
        with pytest.raises(AssertionRefused) as caught:
            self.check(token, **kwargs)
        assert caught.value.oauth_error == "invalid_client"
        assert caught.value.status == 401
        return caught.value

    def assertion(self, pair: KeyPair | None = None, **kwargs: Any) -> str:
        return assertion(pair or self.rsa, self.app.app_id, TOKEN_ENDPOINT, self.now, **kwargs)

    def update(self, **values: Any) -> None:
        with self.auth.store.begin() as conn:
            self.app = applications.update_application(conn, self.app, **values)

    def federated(self, **claims: Any) -> str:
        body = {
            "iss": FED_ISSUER,
            "sub": FED_SUBJECT,
            "aud": FED_AUDIENCE,
            "iat": int(self.now),
            "exp": int(self.now + 300),
        } | claims
        return sign(_FED_KEY, {"alg": "RS256", "kid": "fed-1"}, body)


def _jwks_transport(fetches: list[str]) -> httpx.MockTransport:
    public = RSAKey.import_key(_FED_KEY.public_key()).as_dict() | {"kid": "fed-1"}

    def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == FED_ISSUER + "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": FED_ISSUER, "jwks_uri": FED_ISSUER + "/k"})
        if url == FED_ISSUER + "/k":
            fetches.append(url)
            return httpx.Response(200, json={"keys": [public]})
        return httpx.Response(404)

    return httpx.MockTransport(answer)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    auth = ServerContext.open(Settings(data_dir=tmp_path))
    clock = FrozenClock(_RSA.certificate.not_valid_before_utc.timestamp() + 3600)
    fetches: list[str] = []
    keys = fk.FederatedKeys(clock, transport=_jwks_transport(fetches))
    with auth.store.begin() as conn:
        tenant = new_tenant(auth, conn, name="acme", display_name="Acme")
        app = applications.create_application(
            conn, tenant_id=tenant.id, display_name="Nightly job", now=clock.now()
        )
        for pair in (_RSA, _EC):
            applications.add_certificate(
                conn, app, applications.parse_certificate(pair.certificate_pem), clock.now()
            )
        applications.add_federated_credential(
            conn,
            app,
            issuer=FED_ISSUER,
            subject=FED_SUBJECT,
            audience=FED_AUDIENCE,
            now=clock.now(),
        )
    yield World(auth, tenant, app, _RSA, _EC, clock, keys, fetches)
    auth.close()


# -- finding the key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"x5t#S256": _RSA.x5t_s256()}, id="x5t#S256-padded"),
        pytest.param({"x5t#S256": _RSA.x5t_s256(padded=False)}, id="x5t#S256-unpadded"),
        pytest.param({"x5t": _RSA.x5t()}, id="x5t-padded"),
        pytest.param({"x5t": _RSA.x5t(padded=False)}, id="x5t-unpadded"),
        pytest.param({"kid": _RSA.sha256_hex.upper()}, id="kid-sha256-hex"),
        pytest.param({"kid": _RSA.sha1_hex}, id="kid-sha1-hex"),
        pytest.param({"kid": _RSA.x5t_s256(padded=False)}, id="kid-x5t#S256"),
        pytest.param({"x5c": _RSA.x5c()}, id="x5c-registered"),
    ],
)
@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_a_registered_rsa_certificate_is_found_by_any_thumbprint_form(
    world: World, header: dict[str, Any], alg: str
) -> None:
    found = world.check(world.assertion(alg=alg, header=header))
    assert isinstance(found, AuthenticatedApplication)
    assert found.application.id == world.app.id
    assert found.thumbprint == _RSA.sha256_hex
    assert found.credential() == {"credential": "certificate", "thumbprint": _RSA.sha256_hex}


def test_an_ec_certificate_signs_es256(world: World) -> None:
    assert world.check(world.assertion(world.ec)).thumbprint == _EC.sha256_hex


def test_aud_may_be_the_issuer_or_a_list_and_client_id_may_name_the_app(world: World) -> None:
    by_issuer = assertion(world.rsa, world.app.app_id, ISSUER, world.now)
    as_list = assertion(
        world.rsa, world.app.app_id, ["https://x.example", TOKEN_ENDPOINT], world.now
    )
    assert world.check(by_issuer).application.id == world.app.id
    assert world.check(as_list, client_id=world.app.app_id).application.id == world.app.id


def test_one_assertion_is_accepted_again_within_its_lifetime(world: World) -> None:
    token = world.assertion()
    world.check(token)
    world.clock.advance(300)
    assert world.check(token).application.id == world.app.id


def test_thumbprints_named_reads_every_header_form_once() -> None:
    header = {"x5t#S256": _RSA.x5t_s256(), "x5t": _RSA.x5t(), "x5c": _RSA.x5c(), "kid": "x"}
    assert thumbprints_named(header) == [_RSA.sha256_hex, _RSA.sha1_hex]
    assert thumbprints_named({"x5t": "not base64!"}) == []


# -- each refusal ------------------------------------------------------------------------------


def test_a_token_that_is_not_a_jwt_is_refused() -> None:
    with pytest.raises(AssertionRefused, match="not a signed JWT"):
        parse_assertion("abc.def")
    with pytest.raises(InvalidRequest, match="client_assertion_type"):
        read_assertion("urn:other", "a.b.c")


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512"])
def test_alg_none_hmac_and_others_are_refused(world: World, alg: str) -> None:
    header = json.dumps({"alg": alg, "x5t#S256": _RSA.x5t_s256()}).encode()
    good = world.assertion().split(".")
    head = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
    refused = world.refused(f"{head}.{good[1]}.{good[2]}")
    assert refused.reason == "algorithm_refused"
    assert alg in refused.detail


def test_the_alg_must_fit_the_key_type(world: World) -> None:
    ec_as_rsa = world.assertion(world.ec, alg="ES256", header={"x5t#S256": _RSA.x5t_s256()})
    refused = world.refused(ec_as_rsa)
    assert refused.reason == "algorithm_mismatch"
    assert "RSA key signs PS256 or RS256" in refused.detail


def test_an_unregistered_key_or_x5c_is_refused_never_trusted(world: World) -> None:
    refused = world.refused(world.assertion(_OTHER))  # its own x5c and x5t#S256
    assert refused.reason == "unknown_key"
    assert _OTHER.sha256_hex in refused.detail and "never registered" in refused.detail
    refused = world.refused(world.assertion(header={}))
    assert "names no certificate" in refused.detail


def test_a_key_other_than_the_certificates_is_a_bad_signature(world: World) -> None:
    refused = world.refused(world.assertion(signing_key=_OTHER.key))
    assert refused.reason == "bad_signature"
    assert _RSA.sha256_hex in refused.detail


def test_a_removed_certificate_is_refused(world: World) -> None:
    with world.auth.store.begin() as conn:
        assert applications.remove_certificate(conn, world.app, _RSA.sha1_hex, world.now)
    refused = world.refused(world.assertion())
    assert refused.reason == "unknown_key" and "removed" in refused.detail


def test_an_expired_or_not_yet_valid_certificate_is_refused(world: World) -> None:
    token = world.assertion()
    world.clock.set(_RSA.certificate.not_valid_after_utc.timestamp() + 1)
    refused = world.refused(assertion(_RSA, world.app.app_id, TOKEN_ENDPOINT, world.now))
    assert refused.reason == "certificate_expired"
    assert f"{_RSA.sha256_hex} expired on" in refused.detail
    world.clock.set(_RSA.certificate.not_valid_before_utc.timestamp() - 1)
    assert world.refused(token).reason == "certificate_not_yet_valid"


@pytest.mark.parametrize(
    ("claims", "reason", "says"),
    [
        ({"sub": "someone-else"}, "subject_mismatch", "sub"),
        ({"aud": "https://elsewhere.example/token"}, "audience_mismatch", "aud"),
        ({"aud": ["https://a.example"]}, "audience_mismatch", "aud"),
        ({"exp": None}, "outside_lifetime", "no exp"),
        ({"nbf": 10**10}, "outside_lifetime", "nbf"),
        ({"iat": 10**10}, "outside_lifetime", "iat"),
    ],
)
def test_claims_that_do_not_match_are_refused_saying_which(
    world: World, claims: dict[str, Any], reason: str, says: str
) -> None:
    refused = world.refused(world.assertion(**claims))
    assert refused.reason == reason
    assert says in refused.detail


def test_an_assertion_past_its_exp_or_too_far_ahead_is_refused(world: World) -> None:
    token = world.assertion(lifetime=600)
    world.clock.advance(600 + 60)
    assert world.check(token)  # within the skew
    world.clock.advance(2)
    refused = world.refused(token)
    assert refused.reason == "outside_lifetime" and "expired" in refused.detail
    assert world.check(world.assertion(lifetime=660))
    refused = world.refused(world.assertion(lifetime=662))
    assert refused.reason == "outside_lifetime" and "at most 600 seconds" in refused.detail


def test_an_unknown_application_or_a_foreign_issuer_is_refused(world: World) -> None:
    other = "00000000-0000-4000-8000-000000000000"
    refused = world.refused(assertion(_RSA, other, TOKEN_ENDPOINT, world.now))
    assert refused.reason == "unknown_application" and refused.application is None
    token = assertion(_RSA, other, TOKEN_ENDPOINT, world.now)
    refused = world.refused(token, client_id=world.app.app_id)
    assert refused.reason == "issuer_mismatch"


def test_a_disabled_application_is_refused(world: World) -> None:
    world.update(enabled=False)
    refused = world.refused(world.assertion())
    assert refused.reason == "disabled" and "Nightly job" in refused.detail


def test_a_source_outside_the_allowed_networks_is_refused(world: World) -> None:
    world.update(allowed_networks=["10.0.0.0/8"])
    refused = world.refused(world.assertion())
    assert refused.reason == "source_not_allowed" and SOURCE in refused.detail
    assert world.check(world.assertion(), source="10.1.2.3")
    world.update(allowed_networks=["127.0.0.0/8"])
    assert world.check(world.assertion())


# -- federated credentials ---------------------------------------------------------------------


def _fetch(world: World, token: str) -> None:
    with world.auth.store.read() as conn:
        issuer = federated_issuer(conn, world.tenant.id, world.app.app_id, parse_assertion(token))
    if issuer is not None:
        world.keys.prefetch(issuer, parse_assertion(token).kid)


def test_a_federated_token_with_the_registered_issuer_subject_and_audience(world: World) -> None:
    token = world.federated()
    _fetch(world, token)
    found = world.check(token, client_id=world.app.app_id)
    assert found.federated is not None and found.federated.subject == FED_SUBJECT
    assert found.credential() == {
        "credential": "federated",
        "federated_issuer": FED_ISSUER,
        "federated_subject": FED_SUBJECT,
    }
    assert world.check(world.federated(aud=[FED_AUDIENCE]), client_id=world.app.app_id)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "repo:contoso/jobs:pull_request"}, "subject_mismatch"),
        ({"aud": "api://other"}, "audience_mismatch"),
        ({"aud": [FED_AUDIENCE, "api://other"]}, "audience_mismatch"),
        ({"exp": 10**10}, "outside_lifetime"),
    ],
)
def test_a_federated_token_must_match_a_credential_exactly(
    world: World, claims: dict[str, Any], reason: str
) -> None:
    _fetch(world, world.federated())
    refused = world.refused(world.federated(**claims), client_id=world.app.app_id)
    assert refused.reason == reason


def test_a_federated_token_signed_by_another_key_or_kid_is_refused(world: World) -> None:
    _fetch(world, world.federated())
    forged = sign(_OTHER.key, {"alg": "RS256", "kid": "fed-1"}, {"iss": FED_ISSUER})
    assert world.refused(forged, client_id=world.app.app_id).reason == "bad_signature"
    unknown = sign(_FED_KEY, {"alg": "RS256", "kid": "fed-2"}, {"iss": FED_ISSUER})
    assert world.refused(unknown, client_id=world.app.app_id).reason == "unknown_key"


def test_an_unregistered_issuer_is_never_fetched(world: World) -> None:
    token = world.federated(iss="https://evil.example")
    _fetch(world, token)
    assert world.jwks_fetches == []
    assert world.refused(token, client_id=world.app.app_id).reason == "issuer_mismatch"


def test_without_fetched_keys_a_federated_token_is_refused(world: World) -> None:
    refused = world.refused(world.federated(), client_id=world.app.app_id)
    assert refused.reason == "federated_keys_unavailable"


def test_keys_are_fetched_again_for_an_unknown_kid_at_most_once_a_minute(world: World) -> None:
    world.keys.prefetch(FED_ISSUER, "fed-1")
    world.keys.prefetch(FED_ISSUER, "fed-1")
    assert len(world.jwks_fetches) == 1
    world.keys.prefetch(FED_ISSUER, "new")
    assert len(world.jwks_fetches) == 1
    world.clock.advance(fk.MIN_REFETCH)
    world.keys.prefetch(FED_ISSUER, "new")
    assert len(world.jwks_fetches) == 2
    world.clock.advance(fk.MIN_REFETCH)
    world.keys.prefetch(FED_ISSUER, "fed-1")  # known and fresh: no fetch
    assert len(world.jwks_fetches) == 2
    world.clock.advance(fk.TTL)
    world.keys.prefetch(FED_ISSUER, "fed-1")
    assert len(world.jwks_fetches) == 3


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://ci.example/oidc", True),
        ("http://127.0.0.1:8080/x", True),
        ("http://[::1]/x", True),
        ("http://ci.example/oidc", False),
        ("ftp://ci.example", False),
        ("https://user:pw@ci.example", False),
    ],
)
def test_keys_are_fetched_over_https_or_from_loopback_only(url: str, ok: bool) -> None:
    assert fk.fetchable(url) is ok


# -- audit -------------------------------------------------------------------------------------


def test_sign_ins_and_refusals_are_audited_with_the_credential(world: World) -> None:
    found = world.check(world.assertion())
    refused = AssertionRefused("no", reason="disabled", app=world.app)
    with world.auth.store.begin() as conn:
        record_sign_in(conn, found, audience="https://bastion.test/api/mail", now=world.now)
        record_refusal(conn, world.tenant.id, refused, client_id="x", now=world.now)
        rows = conn.execute(
            select(audit_events).where(audit_events.c.type == "sign_in.application")
        ).all()
    success, failure = rows[-2], rows[-1]
    assert (success.outcome, success.actor_id, success.actor_name, success.client_id) == (
        "success",
        world.app.id,
        "Nightly job",
        world.app.app_id,
    )
    assert success.data["thumbprint"] == _RSA.sha256_hex
    assert success.data["app_id"] == world.app.app_id
    assert (failure.outcome, failure.data["reason"]) == ("failure", "disabled")


# -- an application's access token -------------------------------------------------------------


def _claims(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "sub": world.app.id,
        "client_id": world.app.app_id,
        "idtyp": "app",
        "iat": int(world.now),
    } | extra


def test_an_application_token_counts_while_its_application_does(world: World) -> None:
    with world.auth.store.begin() as conn:
        assert (
            check_application_token(conn, world.tenant, _claims(world), SOURCE).id == world.app.id
        )


@pytest.mark.parametrize("change", ["disabled", "removed", "credential", "network", "user"])
def test_an_application_token_stops_counting(world: World, change: str) -> None:
    claims = _claims(world)
    world.clock.advance(5)
    with world.auth.store.begin() as conn:
        if change == "disabled":
            applications.update_application(conn, world.app, enabled=False)
        elif change == "removed":
            applications.delete_application(conn, world.app)
        elif change == "credential":
            applications.remove_certificate(conn, world.app, _EC.sha256_hex, world.now)
        elif change == "network":
            applications.update_application(conn, world.app, allowed_networks=["10.0.0.0/8"])
        else:
            claims["idtyp"] = "user"
    with world.auth.store.begin() as conn, pytest.raises(InvalidToken):
        check_application_token(conn, world.tenant, claims, SOURCE)
    if change == "credential":  # a token issued after the removal counts
        with world.auth.store.begin() as conn:
            fresh = _claims(world, iat=int(world.now) + 1)
            assert check_application_token(conn, world.tenant, fresh, SOURCE)
