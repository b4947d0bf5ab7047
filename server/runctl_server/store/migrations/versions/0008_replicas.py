"""Replicas: the processes sharing one PostgreSQL database, each run's lease (owner and epoch, the
fencing token), and the inbox through which a replica hands a message to the replica driving a run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Time = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("heartbeat_at", Time, nullable=False),
        # Database time (epoch seconds) after which the replica counts as dead and its runs are taken.
        sa.Column("expires_at", Time, nullable=False),
    )
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        table.add_column(sa.Column("lease_epoch", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_executions_lease_owner", "executions", ["lease_owner"])
    op.create_table(
        "run_inbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("handled_at", Time, nullable=True),
        # The handler's answer (JSON), committed with the changes it made.
        sa.Column("reply", sa.Text(), nullable=True),
    )
    op.create_index("ix_run_inbox_pending", "run_inbox", ["execution_id", "handled_at"])


def downgrade() -> None:
    op.drop_index("ix_run_inbox_pending", "run_inbox")
    op.drop_table("run_inbox")
    op.drop_index("ix_executions_lease_owner", "executions")
    with op.batch_alter_table("executions") as table:
        table.drop_column("lease_epoch")
        table.drop_column("lease_owner")
    op.drop_table("replicas")
