"""A server whose certificate the client does not trust (items 5 and 11 of the command line's
polish): the command fails at once, after one connection (a certificate that failed
verification would fail again: retrying it only made the user wait 3.5 s), and the message
names the flag that fixes it, ``--ca-bundle``; the library's names ``ca_bundle=``.

The server is a real ``bastion serve`` on HTTPS with the demo's local CA; between it and the
client a TCP relay counts the connections.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import bastion
from bastion.client import NetworkError
from bastion.server.tls import LocalTls, ensure_local_tls
from tests.cli.helpers import Cli
from tests.support.flows import Org
from tests.support.relay import pump
from tests.support.server import ServerProcess, free_port, wait_healthy


@pytest.fixture
def https_server(
    server: ServerProcess, tmp_path: Path
) -> Iterator[tuple[int, list[int], LocalTls]]:
    """The same server's data served over HTTPS by a second process, reached through a TCP
    relay that counts connections; the server's base URL names the relay, as it would name
    a load balancer in front of it. Yields the relay's port, its count and the local CA."""
    tls = ensure_local_tls(tmp_path / "tls")
    port = free_port()
    listener = socket.create_server(("127.0.0.1", 0))
    relay = listener.getsockname()[1]
    log_file = tmp_path / "https.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bastion", "serve", "--port", str(port),
             "--base-url", f"https://127.0.0.1:{relay}",
             "--clock-offset-file", str(server.clock_file),
             "--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file)],
            stdout=log, stderr=subprocess.STDOUT, env=server.env(),
        )  # fmt: skip
    try:
        with counting_relay(listener, port) as count:
            trust = ssl.create_default_context(cafile=str(tls.ca_file))
            wait_healthy(f"https://127.0.0.1:{relay}", process, log_file, verify=trust)
            count[0] = 0
            yield relay, count, tls
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def counting_relay(listener: socket.socket, target: int) -> Iterator[list[int]]:
    """Relays what ``listener`` accepts to ``127.0.0.1:target``; yields its connection count."""
    count = [0]

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            count[0] += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", target))
            except OSError:  # the server is not listening yet
                conn.close()
                continue
            threading.Thread(target=pump, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield count
    finally:
        listener.close()


def test_an_untrusted_certificate_fails_at_once_naming_the_ca_bundle_flag(
    t: Org, https_server: tuple[int, list[int], LocalTls], tmp_path: Path
) -> None:
    relay, count, tls = https_server
    url = f"https://127.0.0.1:{relay}"
    cli = Cli(tmp_path / "config")
    cli.ok("profile", "add", "tls", "--url", url, "--tenant", t.name, "--current")
    result = cli.run("mail", "get-mailbox", "--retries", "3", "--non-interactive")
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "not trusted" in result.stderr and "--ca-bundle FILE" in result.stderr
    assert "ca_bundle" not in result.stderr
    assert count[0] == 1  # no retry
    # the flag named works: past TLS, the command stops only for want of a sign-in
    trusted = cli.run("mail", "get-mailbox", "--ca-bundle", str(tls.ca_file), "--non-interactive")
    assert trusted.returncode == 4, trusted.stderr
    # the library names its own parameter
    with pytest.raises(NetworkError) as raised:
        bastion.connect(url, t.name, retries=3, interactive=False, config_dir=tmp_path / "lib")
    assert "connect(ca_bundle=...)" in str(raised.value)
    assert "--ca-bundle" not in str(raised.value)
