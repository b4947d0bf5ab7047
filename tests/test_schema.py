"""The declared tables (store/tables.py) and the migrations agree: Alembic autogenerate, run against a
database migrated to head, finds nothing to change, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from runctl_server.store.tables import metadata


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def _same_empty_default(
    _context: Any,
    _inspected_column: Any,
    _metadata_column: Any,
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's SQLite comparison cannot strip the quotes of an empty string default (it reads back
    as "('')" and renders as ""), so it reports `description DEFAULT ''` as changed; every other
    default is left to Alembic."""
    if inspected_default in ("''", "('')") and rendered_metadata_default in ("", "''"):
        return False
    return None


def _differences(db_url: str) -> list[Any]:
    engine = create_db_engine(db_url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "compare_server_default": _same_empty_default},
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migrated_database_matches_the_declared_tables(db_url: str) -> None:
    assert _differences(db_url) == []


def test_every_migrated_table_is_declared(db_url: str) -> None:
    """A table only the migrations know would be proposed for dropping by autogenerate."""
    declared = set(metadata.tables) | {"alembic_version"}
    engine = create_db_engine(db_url)
    try:
        upgrade_to_head(engine)
        assert set(inspect(engine).get_table_names()) == declared
    finally:
        engine.dispose()
