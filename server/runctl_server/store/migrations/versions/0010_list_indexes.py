"""Indexes that serve every list a page at a time, in the list's own order, so that a page reads about
as many rows as it shows however many runs and pause points a workspace holds:

- the paused runs of a workflow, newest pause first (each run's first pause point);
- runs newest first, with or without a status filter, ties broken by id (the index on
  (workspace_id, created_at) it replaces made every page sort its ties);
- pause points newest first, with or without a status filter.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_pause_points_workflow_registered",
        "pause_points",
        ["workflow_id", sa.text("registered_at DESC"), "execution_id"],
    )
    op.create_index(
        "ix_pause_points_workspace_registered",
        "pause_points",
        ["workspace_id", "registered_at", "context_id"],
    )
    op.create_index(
        "ix_pause_points_workspace_status",
        "pause_points",
        ["workspace_id", "status", "registered_at", "context_id"],
    )
    op.create_index("ix_executions_workspace_created_id", "executions", ["workspace_id", "created_at", "id"])
    op.create_index(
        "ix_executions_workspace_status", "executions", ["workspace_id", "status", "created_at", "id"]
    )
    op.drop_index("ix_executions_workspace_created", table_name="executions")


def downgrade() -> None:
    op.create_index("ix_executions_workspace_created", "executions", ["workspace_id", "created_at"])
    for table, index in (
        ("executions", "ix_executions_workspace_status"),
        ("executions", "ix_executions_workspace_created_id"),
        ("pause_points", "ix_pause_points_workspace_status"),
        ("pause_points", "ix_pause_points_workspace_registered"),
        ("pause_points", "ix_pause_points_workflow_registered"),
    ):
        op.drop_index(index, table_name=table)
