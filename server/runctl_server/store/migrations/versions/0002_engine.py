"""The engine's tables: workflows and their versions, executions, node states, events, pause points,
tasks for external workers and batches. Times are epoch seconds (float) so the hot path never parses
dates; JSON columns hold compact JSON text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Time = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(200)),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.Column("paused_at", Time),
        sa.Column("deleted_at", Time),
        sa.UniqueConstraint("workspace_id", "request_id", name="uq_workflows_request"),
    )
    op.create_index("ix_workflows_workspace_created", "workflows", ["workspace_id", "created_at"])
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.String(64), sa.ForeignKey("workflows.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_type", sa.String(16), nullable=False),
        sa.Column("folder_path", sa.Text()),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("input", sa.Text()),
        sa.Column("request_id", sa.String(200)),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("ended_at", Time),
        sa.UniqueConstraint("workspace_id", "request_id", name="uq_batches_request"),
    )
    op.create_index("ix_batches_workspace_created", "batches", ["workspace_id", "created_at"])
    op.create_table(
        "executions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("workflow_id", sa.String(64), index=True),
        sa.Column("workflow_version", sa.Integer()),
        sa.Column("document", sa.Text()),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("source_path", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("current_node_id", sa.String(128)),
        sa.Column("paused_node_id", sa.String(128)),
        sa.Column("pause_reason", sa.String(32)),
        sa.Column("trace_logs", sa.Boolean(), nullable=False),
        sa.Column("breakpoints_disabled", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("batch_id", sa.String(64), index=True),
        sa.Column("parent_execution_id", sa.String(64)),
        sa.Column("parent_node_key", sa.Text()),
        sa.Column("request_id", sa.String(200)),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("started_at", Time),
        sa.Column("ended_at", Time),
        sa.Column("updated_at", Time, nullable=False),
        # True while the run waits on nothing in-process (timers, pause points, workers, children):
        # such a run is rows only, and recovery after a restart leaves it alone.
        sa.Column("parked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("workspace_id", "request_id", name="uq_executions_request"),
    )
    op.create_index("ix_executions_workspace_created", "executions", ["workspace_id", "created_at"])
    op.create_index("ix_executions_status", "executions", ["status", "parked"])
    op.create_table(
        "node_states",
        sa.Column(
            "execution_id",
            sa.String(64),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("node_key", sa.String(512), primary_key=True),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("node_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("branches", sa.Text()),
        sa.Column("stack", sa.Text()),
        sa.Column("scheduled_at", Time),
        sa.Column("started_at", Time),
        sa.Column("completed_at", Time),
        sa.Column("stopped_at", Time),
        sa.Column("failed_at", Time),
        sa.Column("wake_at", Time),
        sa.Column("logs", sa.Text()),
        # Node-private durable state, e.g. a loop's items and finished iterations.
        sa.Column("state", sa.Text()),
    )
    op.create_index("ix_node_states_wake_at", "node_states", ["wake_at"])
    op.create_table(
        "events",
        sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("time", Time, nullable=False),
        sa.Column("workflow_id", sa.String(64)),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("node_id", sa.String(128)),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_events_execution", "events", ["execution_id", "sequence"])
    op.create_index("ix_events_batch", "events", ["batch_id", "sequence"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(
        sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "event_sequence", "value": 0}],
    )
    op.create_table(
        "pause_points",
        sa.Column("context_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column(
            "execution_id",
            sa.String(64),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("workflow_id", sa.String(64)),
        sa.Column("node_key", sa.String(512), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("display", sa.Text()),
        sa.Column("form_fields", sa.Text()),
        sa.Column("stack", sa.Text()),
        sa.Column("registered_at", Time, nullable=False),
        sa.Column("expires_at", Time),
        sa.Column("expiry_action", sa.String(16)),
        sa.Column("resolved_at", Time),
        sa.Column("resume_data", sa.Text()),
    )
    op.create_index("ix_pause_points_workflow_status", "pause_points", ["workflow_id", "status"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column(
            "execution_id",
            sa.String(64),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("node_key", sa.String(512), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(600), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires_at", Time),
        sa.Column("heartbeat_timeout", Time, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_index("ix_tasks_queue_status", "tasks", ["queue", "status"])


def downgrade() -> None:
    for table in [
        "tasks",
        "pause_points",
        "counters",
        "events",
        "node_states",
        "executions",
        "batches",
        "workflow_versions",
        "workflows",
    ]:
        op.drop_table(table)
