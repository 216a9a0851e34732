"""Redirect URI matching (T1), scope and resource requests (T7), tenant policy (S1)."""

from __future__ import annotations

import pytest

from bastion.authority.clients import check_redirect_uri, redirect_uri_matches
from bastion.authority.resources import parse_scope_request, service_audiences
from bastion.core.errors import InvalidScope, InvalidTarget, UsageError
from bastion.directory.tenants import TenantPolicy
from bastion.services import SERVICES

REGISTERED = "https://app.example/cb"


@pytest.mark.parametrize(
    "candidate",
    [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://APP.example/cb",
        "https://app.example/CB",
        "https://other.example/cb",
        "http://app.example/cb",
        "https://app.example:443/cb",
    ],
)
def test_redirect_uris_match_exactly(candidate: str) -> None:
    assert redirect_uri_matches(REGISTERED, REGISTERED)
    assert not redirect_uri_matches(REGISTERED, candidate)


def test_loopback_redirects_match_on_any_port() -> None:
    assert redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:53117/cb")
    assert redirect_uri_matches("http://[::1]/cb", "http://[::1]:9/cb")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:53117/other")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.2:53117/cb")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://user@127.0.0.1:5/cb")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "https://127.0.0.1:5/cb")


@pytest.mark.parametrize(
    "uri", ["http://app.example/cb", "ftp://x/cb", "https://x/cb#frag", "/relative"]
)
def test_registration_refuses_http_off_loopback(uri: str) -> None:
    with pytest.raises(UsageError):
        check_redirect_uri(uri)


AUD = service_audiences("https://b.example", [service.name for service in SERVICES])


def test_default_scope_and_resource_name_one_audience() -> None:
    mail = AUD["mail"]
    assert parse_scope_request(f"{mail}/.default openid", [], AUD).audience == mail
    assert parse_scope_request("openid", [mail], AUD).audience == mail
    assert parse_scope_request("openid profile", [], AUD).audience is None
    request = parse_scope_request(f"{mail}/.default openid profile offline_access", [], AUD)
    assert request.response_scope() == f"openid profile offline_access {mail}/.default"


@pytest.mark.parametrize(
    ("scope", "resources", "error"),
    [
        ("openid admin", [], InvalidScope),
        ("https://unknown.example/.default", [], InvalidScope),
        (f"{AUD['mail']}/.default {AUD['sites']}/.default", [], InvalidScope),
        ("openid", ["https://unknown.example/api"], InvalidTarget),
        ("openid", ["not a uri"], InvalidTarget),
        ("openid", [AUD["mail"], AUD["chat"]], InvalidTarget),
        (f"{AUD['mail']}/.default", [AUD["chat"]], InvalidTarget),
    ],
)
def test_bad_requests_name_their_error(scope: str, resources: list[str], error: type) -> None:
    with pytest.raises(error):
        parse_scope_request(scope, resources, AUD)


@pytest.mark.parametrize(
    "changes",
    [
        {"session_lifetime": 24 * 3600 + 1},
        {"idle_timeout": 3601},
        {"idle_timeout": 30},
        {"allowed_methods": ("sms",)},
        {"access_token_lifetime": 0},
    ],
)
def test_policy_can_only_shorten_nist_limits(changes: dict) -> None:
    with pytest.raises(UsageError):
        TenantPolicy(**changes).check()
    TenantPolicy().check()


def test_ten_thousand_user_codes_use_the_alphabet_and_length() -> None:
    from bastion.authority.grants.device_code import USER_CODE_ALPHABET, new_user_code

    codes = [new_user_code() for _ in range(10_000)]
    assert all(len(c) == 8 and set(c) <= set(USER_CODE_ALPHABET) for c in codes)
    assert len(USER_CODE_ALPHABET) == 20
