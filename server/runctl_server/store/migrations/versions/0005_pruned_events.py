"""The highest event sequence ever removed from the log, so a watcher resuming from an older cursor
is told its history is gone instead of silently missing events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))


def upgrade() -> None:
    op.bulk_insert(counters, [{"name": "events_pruned_through", "value": 0}])


def downgrade() -> None:
    op.execute(counters.delete().where(counters.c.name == "events_pruned_through"))
