"""The migrations build exactly the schema the code declares, and carry data across."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from bastion.store.engine import MIGRATIONS_DIR
from bastion.store.schema import metadata
from tests.support.server import create_postgres_database


@pytest.fixture
def engine(backend: str, tmp_path: Path) -> Engine:
    if backend == "postgresql":
        url = create_postgres_database()
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    return create_engine(url)


def _migrate(engine: Engine, target: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def test_migrations_match_the_declared_schema(engine: Engine) -> None:
    _migrate(engine, "head")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []
    engine.dispose()


def test_roles_become_built_in_role_groups_and_back(engine: Engine) -> None:
    _migrate(engine, "0003")
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, display_name, policy, created_at) "
                "VALUES ('t1', 'acme', 'Acme', '{}', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, tenant_id, upn, display_name, enabled, mfa_state, "
                "password_failures, recovery_failures, created_at) "
                "VALUES ('u1', 't1', 'ada@acme', 'Ada', true, 'enforced', 0, 0, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO user_roles (tenant_id, user_id, role) VALUES ('t1', 'u1', 'Helpdesk')"
            )
        )
    _migrate(engine, "head")
    with engine.connect() as conn:
        groups = conn.execute(text("SELECT name FROM role_groups WHERE tenant_id = 't1'")).all()
        member = conn.execute(
            text(
                "SELECT g.name FROM role_group_members m JOIN role_groups g "
                "ON g.id = m.role_group_id WHERE m.member_id = 'u1'"
            )
        ).all()
        policies = conn.execute(text("SELECT kind, name FROM chat_policies")).all()
    assert len(groups) == 7 and [m.name for m in member] == ["Helpdesk"]
    assert sorted(tuple(p) for p in policies) == [("meeting", "Global"), ("messaging", "Global")]
    _migrate(engine, "0003", down=True)
    with engine.connect() as conn:
        roles = conn.execute(text("SELECT user_id, role FROM user_roles")).all()
    assert [tuple(r) for r in roles] == [("u1", "Helpdesk")]
    engine.dispose()
