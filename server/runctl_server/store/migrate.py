"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# pg_advisory_xact_lock key of the migration lock: any fixed 64-bit number that nothing else uses
# ("runctlmg" in ASCII). Advisory locks are per database, so each database has its own lock.
MIGRATION_LOCK_KEY = 0x72756E63746C6D67


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    On PostgreSQL replicas starting together serialize on an advisory lock, so one migrates and the
    others then find the schema at head. The lock is transaction-scoped and alembic runs inside this
    transaction: env.py's begin_transaction() is a no-op on a connection already in a transaction,
    so nothing commits (and drops the lock) before the whole upgrade does. A migration must therefore
    not use autocommit_block().
    """
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> frozenset[str]:
    """Every revision this runctl ships (a database at any other one was upgraded by a newer runctl)."""
    return frozenset(
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    )
