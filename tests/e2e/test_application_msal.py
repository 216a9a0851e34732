"""MSAL for Python's ConfidentialClientApplication, unmodified, against a real server over
HTTPS (MSAL insists on an https authority): a certificate given as ``private_key`` and
``public_certificate`` (PS256, ``x5t#S256`` and ``x5c``), as ``private_key`` and
``thumbprint`` (RS256, the SHA-1 ``x5t``), and a federated token as ``client_assertion``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import msal
import pytest
import requests

from bastion.directory import applications
from bastion.directory.applications import Application
from bastion.server.tls import LocalTls, ensure_local_tls
from tests.support.applications import KeyPair, make_certificate, stand_in_issuer
from tests.support.audit_log import events_of
from tests.support.flows import Org
from tests.support.server import ServerProcess, running_server

pytestmark = [pytest.mark.slow, pytest.mark.tenant(served_by="https_server")]

_RSA = make_certificate("RSA")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_server(
    backend: str, tls: LocalTls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"msal-apps-{backend}")
    with running_server(backend, data_dir, tls=tls) as proc:
        yield proc


class Recording(requests.Session):
    """A session trusting only the local CA that keeps every form MSAL posts."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.verify = ca_file
        self.posted: list[dict[str, Any]] = []

    def post(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.posted.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in dict(data or {}).items()}
        )
        return super().post(url, data=data, **kwargs)


@pytest.fixture
def session(tls: LocalTls) -> Iterator[Recording]:
    with Recording(str(tls.ca_file)) as recording:
        yield recording


def new_app(t: Org, *certs: KeyPair) -> Application:
    with t.server.authority.store.begin() as conn:
        app = applications.create_application(
            conn, tenant_id=t.tenant.id, display_name="Reports job", now=t.server.now()
        )
        for pair in certs:
            parsed = applications.parse_certificate(pair.certificate_pem)
            applications.add_certificate(conn, app, parsed, t.server.now())
    return app


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def test_msal_with_a_certificate_gets_tokens_for_two_services_with_one_assertion(
    t: Org, session: Recording
) -> None:
    app = new_app(t, _RSA)
    mail, sites = t.audience("mail"), t.audience("sites")
    client = msal.ConfidentialClientApplication(
        app.app_id,
        client_credential={
            "private_key": _RSA.private_pem,
            "public_certificate": _RSA.certificate_pem,
        },
        oidc_authority=t.issuer,
        http_client=session,
    )
    first = client.acquire_token_for_client(scopes=[f"{mail}/.default"])
    assert "access_token" in first, (first, t.server.log()[-2000:])
    t.server.advance(3)
    second = client.acquire_token_for_client(scopes=[f"{sites}/.default"])
    assert "access_token" in second, second

    for result, audience in ((first, mail), (second, sites)):
        claims = claims_of(result["access_token"])
        assert (claims["idtyp"], claims["sub"], claims["client_id"], claims["aud"]) == (
            "app",
            app.id,
            app.app_id,
            audience,
        )
        assert "refresh_token" not in result

    assertions = [form["client_assertion"] for form in session.posted if "client_assertion" in form]
    assert len(assertions) == 2 and assertions[0] == assertions[1]  # one jti, reused
    header = header_of(assertions[0])
    assert header["alg"] == "PS256"
    assert header["x5t#S256"].rstrip("=") == _RSA.x5t_s256(padded=False)
    assert "x5c" in header

    cached = client.acquire_token_for_client(scopes=[f"{mail}/.default"])
    assert cached["access_token"] == first["access_token"]
    records = events_of(t, "sign_in.application")
    assert [(r.outcome, r.data["audience"]) for r in records] == [
        ("success", mail),
        ("success", sites),
    ]


def test_msal_with_a_sha1_thumbprint_signs_rs256(t: Org, session: Recording) -> None:
    app = new_app(t, _RSA)
    client = msal.ConfidentialClientApplication(
        app.app_id,
        client_credential={"private_key": _RSA.private_pem, "thumbprint": _RSA.sha1_hex},
        oidc_authority=t.issuer,
        http_client=session,
    )
    result = client.acquire_token_for_client(scopes=[f"{t.audience('mail')}/.default"])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["sub"] == app.id
    header = header_of(session.posted[-1]["client_assertion"])
    assert (header["alg"], header["x5t"].rstrip("=")) == ("RS256", _RSA.x5t(padded=False))


def test_msal_with_a_federated_client_assertion(t: Org, session: Recording) -> None:
    app = new_app(t)
    with stand_in_issuer() as issuer:
        with t.server.authority.store.begin() as conn:
            applications.add_federated_credential(
                conn,
                app,
                issuer=issuer.url,
                subject="repo:contoso/reports:ref:refs/heads/main",
                audience="api://bastion",
                now=t.server.now(),
            )
        federated = issuer.token(
            "repo:contoso/reports:ref:refs/heads/main", "api://bastion", t.server.now()
        )
        with pytest.warns(DeprecationWarning, match="client_assertion"):
            # the plain string form, as the issue and older scripts use it
            client = msal.ConfidentialClientApplication(
                app.app_id,
                client_credential={"client_assertion": federated},
                oidc_authority=t.issuer,
                http_client=session,
            )
        result = client.acquire_token_for_client(scopes=[f"{t.audience('mail')}/.default"])
        assert "access_token" in result, result
        assert claims_of(result["access_token"])["client_id"] == app.app_id

        stranger = issuer.token(
            "repo:someone/else:ref:refs/heads/main", "api://bastion", t.server.now()
        )
        refused = msal.ConfidentialClientApplication(
            app.app_id,
            client_credential={"client_assertion": lambda: stranger},
            oidc_authority=t.issuer,
            http_client=session,
        ).acquire_token_for_client(scopes=[f"{t.audience('mail')}/.default"])
        assert refused.get("error") == "invalid_client", refused
        assert "subject" in refused["error_description"]
