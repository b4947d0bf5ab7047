"""Operability: each run keeps the trace context it was started in (W3C traceparent), so every span of
the run joins one trace on any replica and after restarts; ended runs are found by their end time,
for retention.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written to be replayed safely: a database whose revision was set back (to run an older data
    # migration again) may have these already.
    inspector = sa.inspect(op.get_bind())
    if "trace_parent" not in {column["name"] for column in inspector.get_columns("executions")}:
        with op.batch_alter_table("executions") as batch:
            batch.add_column(sa.Column("trace_parent", sa.String(64), nullable=True))
    if "ix_executions_ended_at" not in {index["name"] for index in inspector.get_indexes("executions")}:
        op.create_index("ix_executions_ended_at", "executions", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_executions_ended_at", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("trace_parent")
