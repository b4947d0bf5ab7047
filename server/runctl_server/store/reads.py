"""Reads, run in worker threads on pooled connections so the event loop never blocks on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Executable

Row = dict[str, Any]
# A statement: an SQLAlchemy expression (its parameters bound in it), or SQL text of store/ with
# named parameters.
Statement = Executable | str


def _statement(sql: Statement, expanding: Sequence[str] = ()) -> Executable:
    if not isinstance(sql, str):
        return sql
    statement = text(sql)
    if expanding:
        statement = statement.bindparams(*(bindparam(name, expanding=True) for name in expanding))
    return statement


def _rows(
    connection: Connection, sql: Statement, params: Mapping[str, Any], expanding: Sequence[str]
) -> list[Row]:
    return [dict(row) for row in connection.execute(_statement(sql, expanding), dict(params)).mappings()]


class Reader:
    """Runs read-only statements; in WAL mode and on PostgreSQL they never wait for the writer."""

    def __init__(self, engine: Engine) -> None:
        # On PostgreSQL a read is one statement in autocommit: no BEGIN and ROLLBACK around it, and psycopg
        # keeps its prepared statements (a rollback makes it forget them, so each read was planned anew).
        # Snapshots still run in a transaction of their own, on `_transactional`.
        self._transactional = engine
        self._engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    def _fetch(self, sql: Statement, params: Mapping[str, Any], expanding: Sequence[str]) -> list[Row]:
        with self._engine.connect() as connection:
            return _rows(connection, sql, params, expanding)

    async def all(
        self, sql: Statement, params: Mapping[str, Any] | None = None, expanding: Sequence[str] = ()
    ) -> list[Row]:
        return await asyncio.to_thread(self._fetch, sql, params or {}, expanding)

    async def one(self, sql: Statement, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    def all_sync(self, sql: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._fetch(sql, params or {}, ())

    async def snapshot(self, queries: Mapping[str, Statement]) -> dict[str, list[Row]]:
        """Several reads in one transaction, so they agree with each other (a consistent snapshot)."""

        def run() -> dict[str, list[Row]]:
            with self._transactional.connect() as connection, connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                else:
                    # Python's sqlite3 opens a transaction only before a write: without this each SELECT
                    # would see its own moment, and a snapshot could pair a run's or batch's old status
                    # with the sequence of the event that ended it (a watch then waited for ever).
                    connection.exec_driver_sql("BEGIN")
                return {name: _rows(connection, sql, {}, ()) for name, sql in queries.items()}

        return await asyncio.to_thread(run)
