"""The SQLAlchemy engine for RUNCTL_DB_URL: SQLite (WAL, foreign keys on) or PostgreSQL."""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from runctl_server.settings import SettingsError


def normalize_db_url(url: str) -> URL:
    """Accept `sqlite:///path` and `postgres(ql)://...`; PostgreSQL always goes through psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(f"RUNCTL_DB_URL: not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if backend == "postgresql":
        _require_psycopg()
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise SettingsError(f"RUNCTL_DB_URL: unsupported database {backend!r}; use sqlite:/// or postgresql://")


def _require_psycopg() -> None:
    """PostgreSQL support is the `runctl-server[postgres]` extra: say so before anything connects."""
    if importlib.util.find_spec("psycopg") is None:
        raise SettingsError(
            "RUNCTL_DB_URL names PostgreSQL, and its driver (psycopg) is not installed: "
            "pip install 'runctl-server[postgres]'"
        )


# SQLite `synchronous` settings runctl accepts. FULL (the default) fsyncs the WAL at every commit, so an
# acknowledged change survives a power loss; group commit spreads that one fsync over many changes.
# NORMAL fsyncs only at checkpoints: a change survives a crash of the process, not of the machine.
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")


def _sqlite_pragmas(synchronous: str) -> Callable[[sqlite3.Connection, Any], None]:
    def configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the single writer.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return configure


def create_db_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """Build the engine; SQLite connections get the pragmas on every connect."""
    parsed = normalize_db_url(url)
    if parsed.get_backend_name() == "sqlite":
        if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
            raise SettingsError(f"RUNCTL_SQLITE_SYNCHRONOUS: {sqlite_synchronous!r} is not FULL or NORMAL")
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
