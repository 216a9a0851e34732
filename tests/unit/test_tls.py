"""The demo's local CA: file modes, reuse, and a real TLS handshake against it."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from bastion.server.tls import LocalTls, ensure_local_tls

FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("tls") / "tls")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_modes(local: LocalTls) -> None:
    directory = local.ca_file.parent
    assert _mode(directory) == 0o700
    assert {p.name for p in directory.iterdir()} == set(FILES)
    assert local.cert_file.name == "server.pem" and local.key_file.name == "server-key.pem"
    assert _mode(directory / "ca-key.pem") == 0o600
    assert _mode(local.key_file) == 0o600


def test_certificate_profiles(local: LocalTls) -> None:
    ca = x509.load_pem_x509_certificate(local.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(local.cert_file.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ca_lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert ca_lifetime >= dt.timedelta(days=3650)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    server.verify_directly_issued_by(ca)


@contextmanager
def _tls_server(local: LocalTls) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(local.cert_file, local.key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_a_client_trusting_the_ca_completes_a_handshake(local: LocalTls, hostname: str) -> None:
    client = ssl.create_default_context(cafile=str(local.ca_file))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    with (
        _tls_server(local) as port,
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        client.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        assert tls.recv(5) == b"hello"
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def test_a_client_trusting_another_ca_refuses(local: LocalTls, tmp_path: Path) -> None:
    client = ssl.create_default_context(cafile=str(ensure_local_tls(tmp_path / "other").ca_file))
    with (
        _tls_server(local) as port,
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.wrap_socket(raw, server_hostname="localhost")


def test_second_call_reuses_the_files(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path / "tls")
    before = {name: (tmp_path / "tls" / name).read_bytes() for name in FILES}
    second = ensure_local_tls(tmp_path / "tls")
    assert second == first
    assert {name: (tmp_path / "tls" / name).read_bytes() for name in FILES} == before


def test_a_missing_server_key_reissues_only_the_server_certificate(tmp_path: Path) -> None:
    local = ensure_local_tls(tmp_path / "tls")
    ca_before = local.ca_file.read_bytes()
    cert_before = local.cert_file.read_bytes()
    local.key_file.unlink()
    ensure_local_tls(tmp_path / "tls")
    assert local.ca_file.read_bytes() == ca_before
    assert local.cert_file.read_bytes() != cert_before
    assert _mode(local.key_file) == 0o600
