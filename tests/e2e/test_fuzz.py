"""Property-based fuzzing of every command and of the OAuth endpoints (issue 9 item 3, X6).

Each command's parameters are generated from its own JSON Schema (the catalog's), and from
mutations of it: unknown and missing parameters, values of the wrong type, integers past
any column, strings with control characters, deep nesting, bodies that are not objects or
not JSON at all. The OAuth endpoints get forms of their parameters with such values. Every
answer must be below 500, carry no trace, and be an error in the endpoint's format: problem
details for commands, an OAuth error for the OAuth endpoints.

The settings are fixed (derandomized, a bounded number of examples, no deadline, no example
database), so the suite's time and coverage are the same on every run. With
``BASTION_FUZZ_REPORT=FILE`` the totals are written there as JSON.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from bastion.plane.declare import CommandSpec
from bastion.services import SERVICES
from tests.support.flows import Org, make_tenant
from tests.support.plane import Tokens
from tests.support.server import ServerProcess

COMMAND_EXAMPLES = 10
MUTATION_EXAMPLES = 6
OAUTH_EXAMPLES = 40

FIXED = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=COMMAND_EXAMPLES,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)

COMMANDS: list[CommandSpec] = [spec for service in SERVICES for spec in service]
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "SELECT ", "INSERT INTO")
TOTALS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzzed(server: ServerProcess) -> Iterator[tuple[Org, httpx.Client, dict[str, str]]]:
    """A tenant, its Global Administrator's token for each service, one connection pool."""
    TOTALS.clear()
    t = make_tenant(server)
    admin = Tokens(t, t.admin)
    tokens = {service.name: admin(service.name) for service in SERVICES}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield t, client, tokens
    report = os.environ.get("BASTION_FUZZ_REPORT")
    if report:
        with open(report, "a") as out:
            backend = "postgresql" if server.database_url else "sqlite"
            out.write(json.dumps({"backend": backend, **TOTALS}) + "\n")


def _check(response: httpx.Response, *, oauth: bool) -> None:
    TOTALS["requests"] += 1
    TOTALS[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, response.text[:500]
    for leak in LEAKS:
        assert leak not in response.text, response.text[:500]
    if response.status_code < 400:
        return
    body = response.json()
    if oauth:
        assert response.headers["content-type"].startswith("application/json")
        assert isinstance(body.get("error"), str) and body["error"], body
    else:
        assert response.headers["content-type"] == "application/problem+json", response.text
        assert body["status"] == response.status_code and body["title"] and body["type"]


# --- commands ---------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "a\r\nb",
        "\u202e",
        "%00",
        "' OR 1=1 --",
        "../../etc/passwd",
        "x" * 5000,
    ]
)
NASTY_VALUES = (
    st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1, 10**40, -1, 0, 1.5, True, None, [], {}])
    | NASTY_TEXT
    | JSON_VALUES
)


def _mutated(spec: CommandSpec) -> st.SearchStrategy[bytes]:
    schema = spec.parameters.model_json_schema()
    names = sorted(schema.get("properties", {})) or ["identity"]
    name_strategy = st.sampled_from(names) | st.text(min_size=1, max_size=12)
    objects = st.dictionaries(name_strategy, NASTY_VALUES, max_size=5).map(
        lambda d: json.dumps(d).encode()
    )
    deep = st.integers(min_value=30, max_value=3000).map(
        lambda n: ('{"' + names[0] + '": ' + "[" * n + "]" * n + "}").encode()
    )
    not_objects = JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(
        lambda v: json.dumps(v).encode()
    )
    raw = st.binary(max_size=200)
    return objects | deep | not_objects | raw


def _post(client: httpx.Client, token: str, spec: CommandSpec, body: bytes) -> httpx.Response:
    return client.post(
        f"/api/{spec.service}/commands/{spec.name}",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("spec", COMMANDS, ids=[f"{c.service}-{c.name}" for c in COMMANDS])
def test_every_command_survives_its_schema_and_mutations(
    fuzzed: tuple[Org, httpx.Client, dict[str, str]], spec: CommandSpec
) -> None:
    _, client, tokens = fuzzed
    token = tokens[spec.service]
    schema = spec.parameters.model_json_schema()

    @FIXED
    @given(from_schema(schema))
    def from_its_schema(params: dict[str, Any]) -> None:
        _check(_post(client, token, spec, json.dumps(params).encode()), oauth=False)

    @settings(FIXED, max_examples=MUTATION_EXAMPLES)
    @given(_mutated(spec))
    def from_mutations(body: bytes) -> None:
        _check(_post(client, token, spec, body), oauth=False)

    from_its_schema()
    from_mutations()


# --- OAuth endpoints --------------------------------------------------------------------------

OAUTH_PARAMETERS = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "refresh_token",
    "device_code",
    "scope",
    "resource",
    "token",
    "token_type_hint",
    "username",
    "password",
    "otp",
    "recovery_code",
    "auth_session",
    "response_type",
    "max_age",
    "acr_values",
    "nonce",
]
OAUTH_VALUES = (
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "bastion-cli",
            "S256",
            "openid offline_access",
            "http://127.0.0.1:5/callback",
            "-1",
            str(2**64),
            "1e999",
        ]
    )
    | NASTY_TEXT
    | st.text(max_size=60)
)
OAUTH_FORMS = st.lists(
    st.tuples(st.sampled_from(OAUTH_PARAMETERS) | st.text(max_size=10), OAUTH_VALUES),
    max_size=8,
)
OAUTH_ENDPOINTS = ["token", "devicecode", "revoke", "introspect", "authorize-challenge"]


@pytest.mark.parametrize("endpoint", OAUTH_ENDPOINTS)
def test_the_oauth_endpoints_answer_every_form_with_an_oauth_error(
    fuzzed: tuple[Org, httpx.Client, dict[str, str]], endpoint: str
) -> None:
    t, client, _ = fuzzed

    @settings(FIXED, max_examples=OAUTH_EXAMPLES)
    @given(OAUTH_FORMS, st.booleans())
    def forms(pairs: list[tuple[str, str]], as_form: bool) -> None:
        content_type = "application/x-www-form-urlencoded" if as_form else "text/plain"
        body = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
        response = client.post(
            f"/t/{t.name}/oauth2/{endpoint}", content=body, headers={"Content-Type": content_type}
        )
        _check(response, oauth=True)

    forms()
