"""Reads, run in worker threads on pooled connections so the event loop never blocks on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Executable

Row = dict[str, Any]


def _rows(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
    return [dict(row) for row in connection.execute(statement, dict(params)).mappings()]


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

    def _fetch(self, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
        with self._engine.connect() as connection:
            return _rows(connection, statement, params)

    async def all(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        """The statement's rows; `params` fill the `bindparam`s of a statement built once, ahead."""
        return await asyncio.to_thread(self._fetch, statement, params or {})

    async def one(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.all(statement, params)
        return rows[0] if rows else None

    def all_sync(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._fetch(statement, params or {})

    async def snapshot(self, queries: Mapping[str, Executable]) -> dict[str, list[Row]]:
        """Several reads in one transaction, so they agree with each other (a consistent snapshot)."""

        def run() -> dict[str, list[Row]]:
            with self._transactional.connect() as connection, connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                else:
                    # Python's sqlite3 opens a transaction only before a write: without this each SELECT
                    # would see its own moment, and a snapshot could pair a run's or batch's old status
                    # with the sequence of the event that ended it (a watch then waited for ever).
                    connection.exec_driver_sql("BEGIN")
                return {name: _rows(connection, statement, {}) for name, statement in queries.items()}

        return await asyncio.to_thread(run)
