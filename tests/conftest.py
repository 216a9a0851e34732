"""Fixtures: a real ``bastion serve`` process per storage backend, and test tenants.

Every end-to-end test runs twice, on SQLite and on PostgreSQL. PostgreSQL comes from
``BASTION_TEST_POSTGRES_URL`` (``make test`` starts a throwaway cluster); with
``BASTION_REQUIRE_POSTGRES=1`` a missing URL fails the run instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess, running_server

BACKENDS = ("sqlite", "postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BASTION_TEST_POSTGRES_URL") or os.environ.get("BASTION_REQUIRE_POSTGRES"):
        return
    skip = pytest.mark.skip(reason="BASTION_TEST_POSTGRES_URL is not set (make test sets it)")
    for item in items:
        if "[postgresql" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql" and not os.environ.get("BASTION_TEST_POSTGRES_URL"):
        if os.environ.get("BASTION_REQUIRE_POSTGRES"):
            pytest.fail("BASTION_REQUIRE_POSTGRES is set but BASTION_TEST_POSTGRES_URL is not")
        pytest.skip("no PostgreSQL")
    return name


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"server-{backend}")
    with running_server(backend, data_dir) as proc:
        yield proc
