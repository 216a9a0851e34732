"""A scheduled job signs in as an application (S7): ``bastion connect --app-id ID
--certificate FILE`` (or ``--federated-token-file FILE``), then ``bastion mail get-mailbox
--all`` with stdin closed lists every mailbox, and nobody is ever asked anything.

The application, its certificate and its federated credential are made in-process on the
server's store; the federated token is signed by a stand-in issuer served on loopback by the
test (its discovery document and its keys)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from bastion.directory import applications, role_groups
from bastion.server import seed
from bastion.store.schema import mailboxes
from tests.cli.helpers import Cli
from tests.support.flows import Org
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

NO_PERSON = 60  # seconds: a job that waited for a person would fail here
SUBJECT = "system:serviceaccount:jobs:reporter"
AUDIENCE = "api://BastionTokenExchange"


@pytest.fixture(autouse=True)
def population(t: Org, server: ServerProcess) -> None:
    """More mailboxes than a page (100), so that the listing is paged."""
    seed.seed_population(
        server.authority.store, t.tenant.id, domain=t.name, count=130, now=server.now()
    )


def addresses(t: Org) -> set[str]:
    with t.server.authority.store.begin() as conn:
        found = conn.execute(
            select(mailboxes.c.primary_address).where(mailboxes.c.tenant_id == t.tenant.id)
        )
        return set(found.scalars())


def reporting_application(t: Org) -> applications.Application:
    """An application in the built-in role group Read-Only Reporting."""
    auth = t.server.authority
    with auth.store.begin() as conn:
        app = applications.create_application(
            conn, tenant_id=t.tenant.id, display_name="Nightly reports", now=t.server.now()
        )
        group = role_groups.require_role_group(conn, t.tenant.id, "Read-Only Reporting")
        role_groups.add_member(conn, group, app.id, "app")
    return app


def key_and_certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, days: float = 90
) -> tuple[bytes, bytes]:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nightly-reports")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, cert.public_bytes(serialization.Encoding.PEM)


def as_a_job(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """``bastion`` as a scheduler runs it: stdin closed, stdout and stderr to files."""
    return subprocess.run(
        cli.command(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli.env(),
        timeout=NO_PERSON,
    )


def lists_every_mailbox(t: Org, cli: Cli) -> None:
    listing = as_a_job(
        cli, "mail", "get-mailbox", "--all", "--property", "primaryAddress", "--output", "json"
    )
    assert listing.returncode == 0, listing.stderr
    found = {m["primaryAddress"] for m in json.loads(listing.stdout)}
    assert found == addresses(t) and len(found) >= 130


@pytest.mark.parametrize("key_type", ["RSA", "EC"])
def test_a_job_signs_in_with_a_certificate_and_lists_every_mailbox(
    t: Org, tmp_path: Path, key_type: str
) -> None:
    app = reporting_application(t)
    key = (
        rsa.generate_private_key(65537, 2048)
        if key_type == "RSA"
        else (ec.generate_private_key(ec.SECP256R1()))
    )
    private, public = key_and_certificate(key)
    with t.server.authority.store.begin() as conn:
        applications.add_certificate(
            conn, app, applications.parse_certificate(public.decode()), t.server.now()
        )
    pem = tmp_path / "app.pem"
    pem.write_bytes(private + public)
    pem.chmod(0o600)
    cli = Cli(tmp_path / "config", extra_env={"DISPLAY": ""})
    connected = as_a_job(
        cli,
        "connect",
        "--url",
        t.server.base_url,
        "--tenant",
        t.name,
        "--profile",
        "jobs",
        "--app-id",
        app.app_id,
        "--certificate",
        str(pem),
    )
    assert connected.returncode == 0, connected.stderr
    assert f"as Nightly reports (application {app.app_id})" in connected.stderr
    lists_every_mailbox(t, cli)
    # the profile keeps the path, the cache the tokens: neither holds the key
    config = (tmp_path / "config").rglob("*")
    for path in (p for p in config if p.is_file()):
        assert b"PRIVATE KEY" not in path.read_bytes(), path
        assert private.splitlines()[1] not in path.read_bytes(), path


class Issuer:
    """A stand-in OpenID issuer on loopback: its discovery document and its keys, and
    tokens it signs for a workload."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        keys = {"keys": [self.key.as_dict(private=False)]}
        issuer_box: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer = issuer_box[0]
                documents = {
                    "/.well-known/openid-configuration": {
                        "issuer": issuer,
                        "jwks_uri": f"{issuer}/keys",
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                    },
                    "/keys": keys,
                }
                body = documents.get(self.path)
                data = json.dumps(body).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        issuer_box.append(self.url)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, *, lifetime: int = 600) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": SUBJECT,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        return jwt.encode({"alg": "RS256", "kid": "k1", "typ": "JWT"}, claims, self.key)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    yield found
    found.close()


def test_a_job_signs_in_with_a_federated_token_file_and_lists_every_mailbox(
    t: Org, tmp_path: Path, issuer: Issuer
) -> None:
    app = reporting_application(t)
    with t.server.authority.store.begin() as conn:
        applications.add_federated_credential(
            conn, app, issuer=issuer.url, subject=SUBJECT, audience=AUDIENCE, now=t.server.now()
        )
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token())
    cli = Cli(tmp_path / "config", extra_env={"DISPLAY": ""})
    connected = as_a_job(
        cli,
        "connect",
        "--url",
        t.server.base_url,
        "--tenant",
        t.name,
        "--app-id",
        app.app_id,
        "--federated-token-file",
        str(token_file),
    )
    assert connected.returncode == 0, connected.stderr
    token_file.write_text(issuer.token())  # the platform rotates it; read afresh
    lists_every_mailbox(t, cli)
