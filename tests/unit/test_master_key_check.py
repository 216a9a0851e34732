"""Every process of one deployment holds the same master key: a context opened with
another one is refused before it serves, signs or migrates anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.core.config import Settings
from bastion.core.errors import ConfigError
from bastion.server.bootstrap import new_tenant
from bastion.server.context import ServerContext


def test_a_database_with_keys_opens_only_with_its_master_key(tmp_path: Path) -> None:
    first = ServerContext.open(Settings(data_dir=tmp_path))  # no keys yet: any master key
    with first.store.begin() as conn:
        new_tenant(first, conn, name="acme", display_name="Acme")
    first.close()
    another = Settings(data_dir=tmp_path, master_key_file=tmp_path / "another.key")
    with pytest.raises(ConfigError, match="does not open the keys stored in this database"):
        ServerContext.open(another)
    ServerContext.open(Settings(data_dir=tmp_path)).close()
