"""What the commands that work straight on the database share: the --db-url option and opening it.

The server modules are imported only when a command runs, so `runctl --help` stays quick.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from runctl.cli.context import fail

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DbUrlOption = Annotated[
    str | None,
    typer.Option("--db-url", help="Database URL (sqlite:///path or postgresql://...). Env: RUNCTL_DB_URL."),
]


@contextmanager
def open_database(ctx: typer.Context, db_url: str | None, *, migrate: bool = False) -> Iterator[Engine]:
    """The database of --db-url or RUNCTL_DB_URL (migrated to the latest schema first with `migrate`);
    a database that cannot be reached or read ends the command with one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from runctl_server.settings import Settings, SettingsError
    from runctl_server.store.database import create_db_engine
    from runctl_server.store.migrate import upgrade_to_head

    try:
        engine = create_db_engine(Settings.from_env(db_url=db_url).db_url)
    except SettingsError as exc:
        fail(ctx, str(exc))
    try:
        if migrate:
            upgrade_to_head(engine)
        yield engine
    except (SQLAlchemyError, OSError) as exc:  # unreachable database, missing file, permissions
        fail(ctx, f"database error: {str(exc).strip().splitlines()[0]}")
    finally:
        engine.dispose()
