"""The storage base on SQLite and PostgreSQL: migrations at start, pragmas, restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from runctl_server.settings import Settings, SettingsError
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import current_revision, head_revision, upgrade_to_head
from runctl_server.store.tables import DEFAULT_WORKSPACE_ID, workspaces
from tests.support import running_server, settings_for


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def test_migrations_reach_head_and_are_idempotent(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
        upgrade_to_head(engine)  # a restart applies nothing twice
        with engine.connect() as connection:
            ids = connection.execute(select(workspaces.c.id)).scalars().all()
        assert ids == [DEFAULT_WORKSPACE_ID]
    finally:
        engine.dispose()


def test_server_start_applies_migrations(db_url: str) -> None:
    with running_server(settings_for(db_url)) as handle:
        engine = handle.server.database
        assert engine is not None
        assert current_revision(engine) == head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, 2), ({"RUNCTL_SQLITE_SYNCHRONOUS": "normal"}, 1), ({"RUNCTL_SQLITE_SYNCHRONOUS": "FULL"}, 2)],
)
def test_sqlite_is_durable_against_power_loss_unless_asked(
    sqlite_url: str, env: dict[str, str], expected: int
) -> None:
    """A server's SQLite connections fsync at every commit (synchronous=FULL, 2) by default; NORMAL (1)
    only when RUNCTL_SQLITE_SYNCHRONOUS asks for it."""
    settings = settings_for(sqlite_url, sqlite_synchronous=Settings.from_env(env).sqlite_synchronous)
    with running_server(settings) as handle:
        engine = handle.server.database
        assert engine is not None
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA synchronous")).scalar() == expected


def test_an_unknown_sqlite_synchronous_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="RUNCTL_SQLITE_SYNCHRONOUS: 'OFF' is not FULL or NORMAL"):
        Settings.from_env({"RUNCTL_SQLITE_SYNCHRONOUS": "OFF"})


def test_unreachable_database_is_a_clear_startup_error() -> None:
    from runctl_server.app import StartupError

    settings = settings_for("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StartupError, match="cannot prepare the database"), running_server(settings):
        pass
