"""A few statements run through the database driver itself: those every token grant runs.

SQLAlchemy Core costs 15 to 40 µs to execute a statement already built and compiled (its cache
key, execution context, parameter and result processing), against 1 to 3 µs for SQLite's own
driver; a refresh grant runs five. :class:`Prepared` keeps the statement as Core builds it
and lets SQLAlchemy compile it (the same SQL, the same parameter style), then on SQLite
hands the string and the values to ``sqlite3`` directly. Other databases go through
SQLAlchemy as before: PostgreSQL's cost is the round trip, not the layer.

Only what the driver cannot pass as is needs care, and it is declared: JSON parameters are
serialized and JSON columns parsed here, as SQLAlchemy's JSON type would, and boolean
columns read as bools. Every other value is text or a number, which ``sqlite3`` passes both
ways unchanged.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Insert, Select, Update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

from bastion.core.json_codec import loads as json_loads


class Prepared:
    """A statement whose parameters and result columns are text or numbers, except the
    JSON ones named."""

    def __init__(
        self,
        statement: Insert | Update | Select[Any],
        *,
        json_parameters: frozenset[str] = frozenset(),
        json_columns: frozenset[str] = frozenset(),
        boolean_columns: frozenset[str] = frozenset(),
    ) -> None:
        self.statement = statement
        self.json_parameters = json_parameters
        self.json_columns = json_columns
        #: SQLite stores booleans as 0 and 1; SQLAlchemy's Boolean type reads them as bools
        self.boolean_columns = boolean_columns
        #: on SQLite: the SQL, its parameters in order with their defaults, its row type
        self._sqlite: tuple[str, tuple[str, ...], dict[str, Any]] | None = None
        self._row: Any = None

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Execute a statement that returns no rows."""
        if conn.dialect.name != "sqlite":
            conn.execute(self.statement, dict(params))
            return
        self._driver_execute(conn, params)

    def count(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute an UPDATE or DELETE; the number of rows it changed."""
        if conn.dialect.name != "sqlite":
            return int(conn.execute(self.statement, dict(params)).rowcount)
        return int(self._driver_execute(conn, params).rowcount)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Execute a statement that returns rows (a SELECT, or DML with RETURNING); each
        row's columns are attributes, JSON columns parsed, boolean columns bools."""
        if conn.dialect.name != "sqlite":
            return list(conn.execute(self.statement, dict(params)))
        cursor = self._driver_execute(conn, params)
        fetched = cursor.fetchall()
        names = [column[0] for column in cursor.description]
        if self._row is None:
            self._row = namedtuple("Row", names)  # type: ignore[misc]
        json_at = [i for i, name in enumerate(names) if name in self.json_columns]
        bool_at = [i for i, name in enumerate(names) if name in self.boolean_columns]
        if not json_at and not bool_at:
            return [self._row(*values) for values in fetched]
        result = []
        for values in fetched:
            converted = list(values)
            for i in json_at:
                if converted[i] is not None:
                    converted[i] = json_loads(converted[i])
            for i in bool_at:
                if converted[i] is not None:
                    converted[i] = bool(converted[i])
            result.append(self._row(*converted))
        return result

    def _driver_execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        if self._sqlite is None:
            compiled = self.statement.compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler)
            order = tuple(compiled.positiontup or ())
            self._sqlite = (compiled.string, order, dict(compiled.params))
        sql, order, defaults = self._sqlite
        values = {**defaults, **params}
        for name in self.json_parameters:
            if values.get(name) is not None:
                values[name] = json.dumps(values[name])
        driver = conn.connection.driver_connection
        assert driver is not None
        args = tuple(values[name] for name in order)
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            return driver.execute(sql, args)
        except dbapi_error as exc:
            # as SQLAlchemy would raise it (IntegrityError, OperationalError...), so that
            # callers and the transaction's handling see the same errors on either path
            raise DBAPIError.instance(sql, args, exc, dbapi_error) from exc
