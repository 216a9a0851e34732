"""Statements run through the driver (``store.prepared``) read and write exactly what the
same statements through SQLAlchemy do, JSON columns and parameters included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from bastion.core.config import Settings
from bastion.server.context import ServerContext
from bastion.store.prepared import Prepared

metadata = MetaData()
things = Table(
    "prepared_things",
    metadata,
    Column("id", String, primary_key=True),
    Column("tags", JSON, nullable=False),
    Column("seen_at", Float),
    Column("note", String),
    Column("on", Boolean, nullable=False, default=True),
)
ADD = insert(things).values(
    id=bindparam("b_id"),
    tags=bindparam("b_tags", type_=JSON),
    seen_at=bindparam("b_at"),
    note=None,
    on=True,
)
SEE = (
    update(things)
    .where(things.c.id == bindparam("b_id"))
    .values(seen_at=bindparam("b_at"))
    .returning(things.c.id, things.c.tags, things.c.seen_at, things.c.note, things.c.on)
)


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[ServerContext]:
    opened = ServerContext.open(Settings(data_dir=tmp_path))
    metadata.create_all(opened.store.engine)
    yield opened
    opened.close()


def test_the_driver_path_writes_and_reads_what_sqlalchemy_does(auth: ServerContext) -> None:
    add = Prepared(ADD, json_parameters=frozenset({"b_tags"}))
    see = Prepared(SEE, json_columns=frozenset({"tags"}), boolean_columns=frozenset({"on"}))
    with auth.store.begin() as conn:
        assert conn.dialect.name == "sqlite"  # the path under test
        add.run(conn, {"b_id": "a", "b_tags": ["x", "ÿ", {"k": 1}], "b_at": 1.5})
        conn.execute(ADD, {"b_id": "b", "b_tags": ["x", "ÿ", {"k": 1}], "b_at": 1.5})
    with auth.store.begin() as conn:
        stored = {row.id: tuple(row) for row in conn.execute(select(things))}
        assert stored["a"][1:] == stored["b"][1:] == (["x", "ÿ", {"k": 1}], 1.5, None, True)
        by_driver = see.rows(conn, {"b_id": "a", "b_at": 2.5})
        by_core = conn.execute(SEE, {"b_id": "b", "b_at": 2.5}).all()
    assert [tuple(r)[1:] for r in by_driver] == [tuple(r)[1:] for r in by_core]
    assert by_driver[0].tags == ["x", "ÿ", {"k": 1}] and by_driver[0].seen_at == 2.5
    assert by_driver[0].on is True  # a bool, as SQLAlchemy's Boolean reads it, not 1
    with auth.store.begin() as conn:
        assert see.rows(conn, {"b_id": "none", "b_at": 3.0}) == []


def test_the_driver_path_raises_what_sqlalchemy_raises(auth: ServerContext) -> None:
    add = Prepared(ADD, json_parameters=frozenset({"b_tags"}))
    with auth.store.begin() as conn:
        add.run(conn, {"b_id": "a", "b_tags": [], "b_at": 1.0})
    with pytest.raises(IntegrityError), auth.store.begin() as conn:
        add.run(conn, {"b_id": "a", "b_tags": [], "b_at": 2.0})
