"""Every table, declared once as SQLAlchemy Core: the schema the migrations build and Alembic compares.

Tables are not API messages: converters live at the api edge. Engine times are epoch seconds (float)
so the hot path never parses dates; JSON columns hold compact JSON text. tests/test_schema.py checks
that a database migrated to head matches these declarations.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

DEFAULT_WORKSPACE_ID = "default"

metadata = MetaData()


def _time(name: str, *, nullable: bool = True) -> Column[float]:
    return Column(name, Float(precision=53), nullable=nullable)


workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(), nullable=False),
)

# Only the SHA-256 of a key's secret is stored; `prefix` tells keys apart.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("revoked_at", DateTime(), nullable=True),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("description", Text(), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("request_id", String(200)),
    _time("created_at", nullable=False),
    _time("updated_at", nullable=False),
    _time("paused_at"),
    _time("deleted_at"),
    # A rotated-out webhook secret keeps working until `previous_secret_until`.
    Column("previous_secret_hash", String(128)),
    _time("previous_secret_until"),
    UniqueConstraint("workspace_id", "request_id", name="uq_workflows_request"),
    Index("ix_workflows_workspace_created", "workspace_id", "created_at"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", String(64), ForeignKey("workflows.id"), primary_key=True),
    Column("version", Integer(), primary_key=True),
    Column("document", Text(), nullable=False),
    _time("created_at", nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("source_type", String(16), nullable=False),
    Column("folder_path", Text()),
    Column("concurrency", Integer(), nullable=False),
    Column("total", Integer(), nullable=False),
    Column("input", Text()),
    Column("request_id", String(200)),
    _time("created_at", nullable=False),
    _time("ended_at"),
    UniqueConstraint("workspace_id", "request_id", name="uq_batches_request"),
    Index("ix_batches_workspace_created", "workspace_id", "created_at"),
    # Running batches are looked up at every start and by StopAll; ended ones by ClearBatches.
    Index("ix_batches_status", "workspace_id", "status"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("workflow_id", String(64), index=True),
    Column("workflow_version", Integer()),
    Column("document", Text()),
    Column("name", String(300), nullable=False),
    Column("source_path", Text()),
    Column("status", String(16), nullable=False),
    Column("input", Text(), nullable=False),
    Column("current_node_id", String(128)),
    Column("paused_node_id", String(128)),
    Column("pause_reason", String(32)),
    Column("trace_logs", Boolean(), nullable=False),
    Column("breakpoints_disabled", Boolean(), nullable=False),
    Column("error", Text()),
    Column("batch_id", String(64)),
    Column("parent_execution_id", String(64)),
    Column("parent_node_key", Text()),
    Column("request_id", String(200)),
    _time("created_at", nullable=False),
    _time("started_at"),
    _time("ended_at", nullable=True),
    _time("updated_at", nullable=False),
    # True while the run waits on nothing in-process (timers, pause points, workers, children):
    # such a run is rows only, and recovery after a restart leaves it alone.
    Column("parked", Boolean(), nullable=False, server_default=false()),
    # An operator hold: a held run starts no new node until released.
    Column("hold", String(32)),
    # The run's lease: the replica driving it and the epoch that fences its writes.
    Column("lease_owner", String(64)),
    Column("lease_epoch", BigInteger(), nullable=False, server_default="0"),
    # The W3C traceparent the run was started in, so its spans join one trace anywhere.
    Column("trace_parent", String(64)),
    UniqueConstraint("workspace_id", "request_id", name="uq_executions_request"),
    Index("ix_executions_status", "status", "parked"),
    Index("ix_executions_workspace_created_id", "workspace_id", "created_at", "id"),
    Index("ix_executions_workspace_status", "workspace_id", "status", "created_at", "id"),
    # Partial (migration 0012): only active runs hold a lease.
    Index(
        "ix_executions_lease_owner",
        "lease_owner",
        postgresql_where=text("lease_owner IS NOT NULL"),
        sqlite_where=text("lease_owner IS NOT NULL"),
    ),
    # Partial (migration 0012): most runs belong to no batch.
    Index(
        "ix_executions_batch_id",
        "batch_id",
        postgresql_where=text("batch_id IS NOT NULL"),
        sqlite_where=text("batch_id IS NOT NULL"),
    ),
    Index(
        "ix_executions_ended_at",
        "ended_at",
        postgresql_where=text("ended_at IS NOT NULL"),
        sqlite_where=text("ended_at IS NOT NULL"),
    ),
)

node_states = Table(
    "node_states",
    metadata,
    # No foreign key to its run (migration 0012): checking one cost a query per node state written.
    # Only the run's driver writes these, and retention and clearing a batch remove them with the run.
    Column("execution_id", String(64), primary_key=True),
    Column("node_key", String(512), primary_key=True),
    Column("node_id", String(128), nullable=False),
    Column("node_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("output", Text()),
    Column("error", Text()),
    Column("branches", Text()),
    Column("stack", Text()),
    _time("scheduled_at"),
    _time("started_at"),
    _time("completed_at"),
    _time("stopped_at"),
    _time("failed_at"),
    _time("wake_at"),
    Column("logs", Text()),
    # Node-private durable state, e.g. a loop's items and finished iterations.
    Column("state", Text()),
    # Partial (migration 0012): only waking nodes are looked up by wake_at.
    Index(
        "ix_node_states_wake_at",
        "wake_at",
        postgresql_where=text("wake_at IS NOT NULL"),
        sqlite_where=text("wake_at IS NOT NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    Column("sequence", BigInteger(), primary_key=True, autoincrement=False),
    Column("workspace_id", String(64), nullable=False),
    Column("type", String(48), nullable=False),
    _time("time", nullable=False),
    Column("workflow_id", String(64)),
    Column("execution_id", String(64)),
    Column("batch_id", String(64)),
    Column("node_id", String(128)),
    Column("payload", Text(), nullable=False),
    Index("ix_events_execution", "execution_id", "sequence"),
    Index(
        "ix_events_batch",
        "batch_id",
        "sequence",
        postgresql_where=text("batch_id IS NOT NULL"),
        sqlite_where=text("batch_id IS NOT NULL"),
    ),
)

# Named counters: `event_sequence` (the last event number given) and `events_pruned_through`.
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger(), nullable=False),
)

pause_points = Table(
    "pause_points",
    metadata,
    Column("context_id", String(64), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column(
        "execution_id",
        String(64),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("workflow_id", String(64)),
    Column("node_key", String(512), nullable=False),
    Column("node_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("display", Text()),
    Column("form_fields", Text()),
    Column("stack", Text()),
    _time("registered_at", nullable=False),
    _time("expires_at"),
    Column("expiry_action", String(16)),
    _time("resolved_at"),
    Column("resume_data", Text()),
    Index("ix_pause_points_workflow_status", "workflow_id", "status"),
)
# Every list is served a page at a time in its own order (migration 0010).
Index(
    "ix_pause_points_workflow_registered",
    pause_points.c.workflow_id,
    pause_points.c.registered_at.desc(),
    pause_points.c.execution_id,
)
Index(
    "ix_pause_points_workspace_registered",
    pause_points.c.workspace_id,
    pause_points.c.registered_at,
    pause_points.c.context_id,
)
Index(
    "ix_pause_points_workspace_status",
    pause_points.c.workspace_id,
    pause_points.c.status,
    pause_points.c.registered_at,
    pause_points.c.context_id,
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(64), nullable=False),
    Column(
        "execution_id",
        String(64),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("node_key", String(512), nullable=False),
    Column("node_id", String(128), nullable=False),
    Column("queue", String(200), nullable=False),
    Column("type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer(), nullable=False),
    Column("idempotency_key", String(600), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("lease_owner", String(200)),
    _time("lease_expires_at"),
    _time("heartbeat_timeout", nullable=False),
    _time("created_at", nullable=False),
    _time("updated_at", nullable=False),
    Index("ix_tasks_queue_status", "queue", "status"),
)

# One row per run a batch started, in source order, with the path as the request named it.
batch_items = Table(
    "batch_items",
    metadata,
    Column("batch_id", String(64), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer(), primary_key=True),
    Column(
        "execution_id",
        String(64),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("workflow_id", String(64)),
    Column("workflow_path", Text()),
    Column("workflow_file_name", String(300)),
)

# The server's own keys, e.g. the one that signs resume links (made at first start).
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", String(128), nullable=False),
    _time("created_at", nullable=False),
)

# The processes sharing one PostgreSQL database.
replicas = Table(
    "replicas",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer(), nullable=False),
    _time("started_at", nullable=False),
    _time("heartbeat_at", nullable=False),
    # Database time after which the replica counts as dead and its runs are taken.
    _time("expires_at", nullable=False),
)

# Messages handed to the replica driving a run.
run_inbox = Table(
    "run_inbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("execution_id", String(64), nullable=False),
    Column("sender", String(64), nullable=False),
    Column("message", Text(), nullable=False),
    _time("created_at", nullable=False),
    _time("handled_at"),
    # The handler's answer (JSON), committed with the changes it made.
    Column("reply", Text()),
    Index("ix_run_inbox_pending", "execution_id", "handled_at"),
)
