"""The token endpoint's grant table, in process: which grant types exist, what each reads,
and the refusals that come before any grant runs (RFC 6749 sections 3.2 and 5.2)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, cast

import pytest

from bastion.authority.client_registration import KNOWN_GRANTS
from bastion.authority.clients import Client
from bastion.authority.grants.grant import Grant, TokenRequest
from bastion.authority.grants.table import GRANTS, grant_for
from bastion.core.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from bastion.http.discovery_endpoints import metadata

#: the parameters each grant reads, as its specification names them
SPECIFIED = {
    # RFC 6749 section 4.1.3, RFC 7636 section 4.5, RFC 8707 section 2
    "authorization_code": {"code", "redirect_uri", "code_verifier", "resource"},
    # RFC 6749 section 6, RFC 8707 section 2
    "refresh_token": {"refresh_token", "scope", "resource"},
    # RFC 8628 section 3.4
    "urn:ietf:params:oauth:grant-type:device_code": {"device_code"},
    # RFC 6749 section 4.4.2, RFC 8707 section 2
    "client_credentials": {"scope", "resource"},
}

#: the ``unauthorized_client`` answers, word for word as before the table
REFUSALS = {
    "authorization_code": "This client may not use the authorization code grant.",
    "refresh_token": "This client may not use refresh tokens.",
    "urn:ietf:params:oauth:grant-type:device_code": (
        "This client may not use the device authorization grant."
    ),
    "client_credentials": (
        "Only applications may use the client credentials grant, authenticated with a "
        "client assertion (private_key_jwt)."
    ),
}

#: what a client sends besides a grant's own parameters: never seen by the grant
CLIENT_PARAMETERS = {"grant_type": "x", "client_id": "app", "client_secret": "s3cret"}


def _client(*grant_types: str) -> Client:
    return Client(
        tenant_id="t",
        client_id="app",
        name="App",
        secret_hash=None,
        redirect_uris=(),
        grant_types=grant_types,
        first_party=False,
    )


def _request(client: Client, form: dict[str, Any]) -> TokenRequest:
    # No store: every check here comes before a grant touches one.
    return TokenRequest(
        auth=cast(Any, None),
        conn=cast(Any, None),
        tenant=cast(Any, None),
        issuer="https://bastion.test/t/acme",
        audiences={},
        client=client,
        form=form,
        now=0.0,
    )


def test_the_table_lists_every_grant_type_the_discovery_document_advertises() -> None:
    advertised = metadata("https://bastion.test/t/acme", {})["grant_types_supported"]
    assert advertised == list(GRANTS)
    assert advertised == [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "client_credentials",
    ]


def test_a_client_can_be_registered_for_exactly_the_grants_in_the_table() -> None:
    # client_credentials is applications' alone (decision 0036): never a client's
    assert set(KNOWN_GRANTS) == set(GRANTS) - {"client_credentials"}


@pytest.mark.parametrize("grant_type", ["password", "implicit", "jwt-bearer", "x" * 500])
def test_an_unknown_grant_is_refused_as_unsupported(grant_type: str) -> None:
    with pytest.raises(UnsupportedGrantType) as refused:
        grant_for(grant_type)
    assert refused.value.oauth_error == "unsupported_grant_type"
    assert refused.value.detail == f"grant_type '{grant_type[:64]}' is not supported."
    assert refused.value.hint == (
        "Use authorization_code (with PKCE), the device code grant, or refresh_token."
    )


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_grant_type_is_an_invalid_request(missing: str | None) -> None:
    with pytest.raises(InvalidRequest, match="grant_type is required"):
        grant_for(missing)


@pytest.mark.parametrize("grant_type", list(GRANTS))
def test_each_grant_declares_its_type_parameters_and_refusal(grant_type: str) -> None:
    grant = grant_for(grant_type)
    assert grant.grant_type == grant_type
    assert grant.parameters == SPECIFIED[grant_type]
    assert grant.refusal == REFUSALS[grant_type]


@pytest.mark.parametrize("grant_type", list(GRANTS))
def test_a_grant_sees_only_the_parameters_it_declares(grant_type: str) -> None:
    grant = grant_for(grant_type)
    sent = {name: "v" for name in grant.parameters} | CLIENT_PARAMETERS | {"nonce": "n"}
    sent["resource_list"] = ["https://bastion.test/api/mail"]
    seen = grant.declared(sent)
    assert set(seen) - {"resource_list"} == grant.parameters
    assert ("resource_list" in seen) == ("resource" in grant.parameters)
    with pytest.raises(TypeError):
        cast(Any, seen)["code"] = "changed"


@pytest.mark.parametrize("grant_type", list(GRANTS))
def test_a_client_not_registered_for_a_grant_is_an_unauthorized_client(grant_type: str) -> None:
    grant = grant_for(grant_type)
    others = tuple(g for g in GRANTS if g != grant_type)
    with pytest.raises(UnauthorizedClient) as refused:
        grant.respond(_request(_client(*others), {}))
    assert refused.value.oauth_error == "unauthorized_client"
    assert refused.value.detail == REFUSALS[grant_type]


class _EchoGrant(Grant):
    """A grant as a later module would add one: it answers with what it was handed."""

    grant_type: ClassVar[str] = "urn:example:echo"
    parameters = frozenset({"assertion"})
    refusal = "This client may not echo."

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        return {"form": dict(request.form), "client": request.client.client_id}


def test_a_new_grant_is_a_class_the_endpoint_calls_the_same_way() -> None:
    echo = _EchoGrant()
    form = {"assertion": "a", **CLIENT_PARAMETERS}
    answer = echo.respond(_request(_client(echo.grant_type), dict(echo.declared(form))))
    assert answer == {"form": {"assertion": "a"}, "client": "app"}


def test_the_request_bundle_is_frozen() -> None:
    request = _request(_client(), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cast(Any, request).now = 1.0
