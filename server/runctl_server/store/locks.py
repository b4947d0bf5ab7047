"""Locks shared by every replica of one PostgreSQL database (advisory locks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def advisory_lock(dsn: str, key: str) -> AsyncIterator[None]:
    """Hold the cluster-wide lock named `key` for the block. It lives on a connection of its own, so a
    replica that dies while holding it lets it go with its connection."""
    import psycopg  # the `postgres` extra, imported only where PostgreSQL is in use

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        await connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        yield
