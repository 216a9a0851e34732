"""Fixtures shared by the end-to-end tests: a fresh tenant on the shared server, its Global
Administrator's tokens, a command line signed in to it, and an HTTP proxy that asks for a
password.

A module that needs its tenant made differently says so with a marker instead of a fixture
of its own: ``pytestmark = pytest.mark.tenant(idle_timeout=1800)`` passes policy to
``make_tenant``, and ``served_by="https_server"`` makes it on that fixture's server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Cli, sign_in
from tests.client.proxies import http_proxy
from tests.support.flows import Org, make_tenant
from tests.support.plane import Tokens
from tests.support.server import ServerProcess


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tenant(served_by='server', **policy): how the `t` fixture makes its tenant"
    )


@pytest.fixture
def t(backend: str, request: pytest.FixtureRequest) -> Org:
    """A tenant of this test's own, on the session's server unless the module's ``tenant``
    marker names another server fixture. (``backend`` is asked for by name so that every test
    taking ``t`` runs once per backend: the server is looked up only at run time.)"""
    marker = request.node.get_closest_marker("tenant")
    policy = dict(marker.kwargs) if marker else {}
    server: ServerProcess = request.getfixturevalue(policy.pop("served_by", "server"))
    return make_tenant(server, **policy)


@pytest.fixture
def admin(t: Org) -> Tokens:
    """The tenant's Global Administrator, signed in (tokens per service, on demand)."""
    return Tokens(t, t.admin)


@pytest.fixture
def cli(t: Org, tmp_path: Path) -> Cli:
    """The command line with its own configuration, signed in as the tenant's administrator."""
    return sign_in(t, tmp_path / "config")


@pytest.fixture(scope="module")
def proxy_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An HTTP proxy on loopback that asks for ``corp``/``s3cret``; yields its port."""
    with http_proxy(tmp_path_factory.mktemp("proxy"), user="corp", password="s3cret") as port:
        yield port
