"""Hot-path SQL, written once for SQLite and PostgreSQL (named parameters; the writer adapts them)."""

from __future__ import annotations

INSERT_EXECUTION = (
    "INSERT INTO executions (id, workspace_id, workflow_id, workflow_version, document, name, source_path,"
    " status, input, current_node_id, paused_node_id, pause_reason, trace_logs, breakpoints_disabled, error,"
    " batch_id, parent_execution_id, parent_node_key, request_id, created_at, started_at, ended_at,"
    " updated_at, parked, hold, lease_owner, lease_epoch, trace_parent)"
    " VALUES (:id, :workspace_id, :workflow_id, :workflow_version, :document, :name, :source_path,"
    " :status, :input, :current_node_id, :paused_node_id, :pause_reason, :trace_logs, :breakpoints_disabled,"
    " :error, :batch_id, :parent_execution_id, :parent_node_key, :request_id, :created_at, :started_at,"
    " :ended_at, :updated_at, :parked, :hold, :lease_owner, :lease_epoch, :trace_parent)"
)

# A run that ends lets go of its lease: only active runs hold one, so the lease index and a draining
# replica's release cover active runs, not every run a replica ever drove.
UPDATE_EXECUTION = (
    "UPDATE executions SET status = :status, current_node_id = :current_node_id,"
    " paused_node_id = :paused_node_id, pause_reason = :pause_reason, trace_logs = :trace_logs,"
    " breakpoints_disabled = :breakpoints_disabled, error = :error, started_at = :started_at,"
    " ended_at = :ended_at, updated_at = :updated_at, parked = :parked, hold = :hold,"
    " lease_owner = CASE WHEN :active THEN lease_owner END WHERE id = :id"
)

UPSERT_NODE = (
    "INSERT INTO node_states (execution_id, node_key, node_id, node_type, status, attempts, output, error,"
    " branches, stack, scheduled_at, started_at, completed_at, stopped_at, failed_at, wake_at, logs, state)"
    " VALUES (:execution_id, :node_key, :node_id, :node_type, :status, :attempts, :output, :error, :branches,"
    " :stack, :scheduled_at, :started_at, :completed_at, :stopped_at, :failed_at, :wake_at, :logs, :state)"
    " ON CONFLICT (execution_id, node_key) DO UPDATE SET status = excluded.status,"
    " attempts = excluded.attempts, output = excluded.output, error = excluded.error,"
    " branches = excluded.branches, scheduled_at = excluded.scheduled_at, started_at = excluded.started_at,"
    " completed_at = excluded.completed_at, stopped_at = excluded.stopped_at, failed_at = excluded.failed_at,"
    " wake_at = excluded.wake_at, logs = excluded.logs, state = excluded.state"
)

# PostgreSQL: many node states in one statement, from one JSON document (json_to_recordset), for a
# run of UPSERT_NODE statements in one commit (store/writer.py). One statement per node cost the
# server a statement's start and end per row, most of what it spent on node states.
UPSERT_NODES_PG = """
INSERT INTO node_states (execution_id, node_key, node_id, node_type, status, attempts, output, error,
                         branches, stack, scheduled_at, started_at, completed_at, stopped_at, failed_at,
                         wake_at, logs, state)
SELECT r.execution_id, r.node_key, r.node_id, r.node_type, r.status, r.attempts, r.output, r.error,
       r.branches, r.stack, r.scheduled_at, r.started_at, r.completed_at, r.stopped_at, r.failed_at,
       r.wake_at, r.logs, r.state
FROM json_to_recordset(%(rows)s::json) AS r(
    execution_id text, node_key text, node_id text, node_type text, status text, attempts integer,
    output text, error text, branches text, stack text, scheduled_at float8, started_at float8,
    completed_at float8, stopped_at float8, failed_at float8, wake_at float8, logs text, state text
)
ON CONFLICT (execution_id, node_key) DO UPDATE SET status = excluded.status,
    attempts = excluded.attempts, output = excluded.output, error = excluded.error,
    branches = excluded.branches, scheduled_at = excluded.scheduled_at, started_at = excluded.started_at,
    completed_at = excluded.completed_at, stopped_at = excluded.stopped_at, failed_at = excluded.failed_at,
    wake_at = excluded.wake_at, logs = excluded.logs, state = excluded.state
"""

INSERT_PAUSE_POINT = (
    "INSERT INTO pause_points (context_id, workspace_id, execution_id, workflow_id, node_key, node_id, kind,"
    " status, display, form_fields, stack, registered_at, expires_at, expiry_action, resolved_at,"
    " resume_data)"
    " VALUES (:context_id, :workspace_id, :execution_id, :workflow_id, :node_key, :node_id, :kind, :status,"
    " :display, :form_fields, :stack, :registered_at, :expires_at, :expiry_action, NULL, NULL)"
)

RESOLVE_PAUSE_POINT = (
    "UPDATE pause_points SET status = :status, resolved_at = :resolved_at, resume_data = :resume_data"
    " WHERE context_id = :context_id AND status = 'paused'"
)

INSERT_TASK = (
    "INSERT INTO tasks (id, workspace_id, execution_id, node_key, node_id, queue, type, status, attempt,"
    " idempotency_key, payload, lease_owner, lease_expires_at, heartbeat_timeout, created_at, updated_at)"
    " VALUES (:id, :workspace_id, :execution_id, :node_key, :node_id, :queue, :type, 'pending', :attempt,"
    " :idempotency_key, :payload, NULL, NULL, :heartbeat_timeout, :created_at, :created_at)"
)

SET_TASK_STATUS = "UPDATE tasks SET status = :status, updated_at = :updated_at WHERE id = :id"

LEASE_TASK = (
    "UPDATE tasks SET status = 'leased', lease_owner = :owner, lease_expires_at = :expires, updated_at = :now"
    " WHERE id = :id AND status = 'pending'"
)

EXTEND_LEASE = (
    "UPDATE tasks SET lease_expires_at = :expires, updated_at = :now"
    " WHERE id = :id AND status = 'leased' AND lease_owner = :owner"
)

RELEASE_TASK = (
    "UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, attempt = attempt + 1,"
    " updated_at = :now WHERE id = :id AND status = 'leased'"
)

# -- the task dispatcher (engine/tasks.py): every change is guarded by the state it expects, so two
# server processes sharing the database never both win the same task.

# The lease runs for the task's own heartbeat timeout from :now.
LEASE_PENDING_TASK = (
    "UPDATE tasks SET status = 'leased', lease_owner = :owner, lease_expires_at = :now + heartbeat_timeout,"
    " updated_at = :now WHERE id = :id AND status = 'pending'"
)

# Back to pending after the worker went silent: the next dispatch is a new delivery attempt.
RELEASE_EXPIRED_TASK = (
    "UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, attempt = attempt + 1,"
    " updated_at = :now WHERE id = :id AND status = 'leased' AND lease_expires_at <= :now"
)

# Back to pending when the lease never reached the worker (its stream closed while leasing).
RETURN_TASK = (
    "UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = :now"
    " WHERE id = :id AND status = 'leased' AND lease_owner = :owner"
)

FINISH_TASK = (
    "UPDATE tasks SET status = :status, updated_at = :now"
    " WHERE id = :id AND status = 'leased' AND lease_owner = :owner"
)

CANCEL_OPEN_TASK = (
    "UPDATE tasks SET status = 'cancelled', updated_at = :now"
    " WHERE id = :id AND status IN ('pending', 'leased')"
)

INSERT_WORKFLOW = (
    "INSERT INTO workflows (id, workspace_id, name, description, status, version, secret_hash, request_id,"
    " created_at, updated_at, paused_at, deleted_at) VALUES (:id, :workspace_id, :name, :description,"
    " 'active', 1, :secret_hash, :request_id, :now, :now, NULL, NULL)"
)

INSERT_WORKFLOW_VERSION = (
    "INSERT INTO workflow_versions (workflow_id, version, document, created_at)"
    " VALUES (:workflow_id, :version, :document, :now)"
)

UPDATE_WORKFLOW_DEFINITION = (
    "UPDATE workflows SET name = :name, description = :description, version = :version, updated_at = :now"
    " WHERE id = :id AND version = :previous_version"
)

SET_WORKFLOW_STATUS = (
    "UPDATE workflows SET status = :status, paused_at = :paused_at, updated_at = :now WHERE id = :id"
)

# One statement: the secret kept is whatever is current when it runs (SQL reads the old row on the
# right-hand side), so two servers rotating at once cannot lose one.
ROTATE_WEBHOOK_HASH = (
    "UPDATE workflows SET previous_secret_hash = CASE WHEN :keep THEN secret_hash END,"
    " previous_secret_until = :until, secret_hash = :hash, updated_at = :now WHERE id = :id"
)

# paused_at says since when a workflow is paused, and is cleared when it is not paused any more.
SET_GUARDED_WORKFLOW_STATUS = (
    "UPDATE workflows SET status = :status, updated_at = :now, paused_at = :paused_at"
    " WHERE id = :id AND status = :expected"
)

DELETE_WORKFLOW = "UPDATE workflows SET deleted_at = :now, updated_at = :now WHERE id = :id"

# -- batches (engine/batches.py): a batch row, one item per run in source order. Ending a batch is
# guarded by its status, so a stop and a completion never both win.

INSERT_BATCH = (
    "INSERT INTO batches (id, workspace_id, status, source_type, folder_path, concurrency, total, input,"
    " request_id, created_at, ended_at) VALUES (:id, :workspace_id, 'running', :source_type, :folder_path,"
    " :concurrency, :total, :input, :request_id, :created_at, NULL)"
)

INSERT_BATCH_ITEM = (
    "INSERT INTO batch_items (batch_id, position, execution_id, workflow_id, workflow_path,"
    " workflow_file_name) VALUES (:batch_id, :position, :execution_id, :workflow_id, :workflow_path,"
    " :workflow_file_name)"
)

END_BATCH = "UPDATE batches SET status = :status, ended_at = :ended_at WHERE id = :id AND status = 'running'"

# Node states have no foreign key to cascade from their run (migration 0012).
DELETE_BATCH_NODE_STATES = (
    "DELETE FROM node_states WHERE execution_id IN (SELECT id FROM executions WHERE batch_id = :batch_id"
    " AND status IN ('completed', 'error', 'stopped'))"
)

# Runs go first (their pause points, tasks and batch items cascade), then the batch,
# which is kept if a run of it is somehow still active.
DELETE_BATCH_RUNS = (
    "DELETE FROM executions WHERE batch_id = :batch_id AND status IN ('completed', 'error', 'stopped')"
)

DELETE_BATCH = (
    "DELETE FROM batches WHERE id = :id AND status <> 'running' AND NOT EXISTS (SELECT 1 FROM executions"
    " WHERE batch_id = :id AND status IN ('queued', 'running', 'paused'))"
)

# Removing a batch's history (ClearBatches) remembers how far the log was pruned, for watchers.
MARK_BATCH_EVENTS_PRUNED = (
    "UPDATE counters SET value = (SELECT MAX(sequence) FROM events WHERE batch_id = :batch_id)"
    " WHERE name = 'events_pruned_through'"
    " AND value < COALESCE((SELECT MAX(sequence) FROM events WHERE batch_id = :batch_id), 0)"
)
DELETE_BATCH_EVENTS = "DELETE FROM events WHERE batch_id = :batch_id"
