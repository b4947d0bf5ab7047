"""Alembic environment: runs against the connection handed over by runctl_server.store.migrate."""

from __future__ import annotations

from alembic import context

from runctl_server.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through runctl_server.store.migrate.upgrade_to_head")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
