"""Reads, run in worker threads on pooled connections so the event loop never blocks on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

Row = dict[str, Any]


class Reader:
    """Runs read-only statements; in WAL mode and on PostgreSQL they never wait for the writer."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _fetch(self, sql: str, params: Mapping[str, Any], expanding: Sequence[str]) -> list[Row]:
        statement = text(sql)
        if expanding:
            statement = statement.bindparams(*(bindparam(name, expanding=True) for name in expanding))
        with self._engine.connect() as connection:
            return [dict(row) for row in connection.execute(statement, dict(params)).mappings()]

    async def all(
        self, sql: str, params: Mapping[str, Any] | None = None, expanding: Sequence[str] = ()
    ) -> list[Row]:
        return await asyncio.to_thread(self._fetch, sql, params or {}, expanding)

    async def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    def all_sync(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._fetch(sql, params or {}, ())

    async def snapshot(self, queries: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, list[Row]]:
        """Several reads in one transaction, so they agree with each other (a consistent snapshot)."""

        def run() -> dict[str, list[Row]]:
            with self._engine.connect() as connection, connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                return {
                    name: [dict(row) for row in connection.execute(text(sql), dict(params)).mappings()]
                    for name, (sql, params) in queries.items()
                }

        return await asyncio.to_thread(run)
