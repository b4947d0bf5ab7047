"""Alembic environment: runs against the connection handed over by runctl_server.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from runctl_server.store import tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through runctl_server.store.migrate.upgrade_to_head")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
