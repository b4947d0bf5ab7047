"""Batch items: which run a batch started for each workflow, in source order, and from what path.

The `batches` table (0002) holds the batch itself; a run's batch is `executions.batch_id`. What the
runs cannot say is their place in the source and the path as the request named it (a run keeps the
resolved real path), so each batch keeps one row per run here. Rows go with their batch and with
their run (ON DELETE CASCADE).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_items",
        sa.Column(
            "batch_id",
            sa.String(64),
            sa.ForeignKey("batches.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column(
            "execution_id",
            sa.String(64),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("workflow_id", sa.String(64)),
        sa.Column("workflow_path", sa.Text()),
        sa.Column("workflow_file_name", sa.String(300)),
    )
    # Running batches are looked up at every start and by StopAll; ended ones by ClearBatches.
    op.create_index("ix_batches_status", "batches", ["workspace_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_table("batch_items")
