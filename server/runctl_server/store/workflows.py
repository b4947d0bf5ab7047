"""Workflows and their versions: the reads, and the changes the writer commits (SQL of store/sql.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.sql import Select

from runctl_server.store import sql
from runctl_server.store.reads import Reader
from runctl_server.store.records import RunState, WorkflowRecord, record
from runctl_server.store.tables import executions, workflow_versions, workflows
from runctl_server.store.writer import Change

# Built once: these run for every start, and building an expression costs more than running it.
_LIVE = select(workflows).where(
    workflows.c.id == bindparam("id"),
    workflows.c.workspace_id == bindparam("ws"),
    workflows.c.deleted_at.is_(None),
)
_BY_REQUEST = select(workflows).where(
    workflows.c.workspace_id == bindparam("ws"), workflows.c.request_id == bindparam("rid")
)
_BY_ID = select(workflows).where(workflows.c.id == bindparam("id"))
_VERSION_DOCUMENT = select(workflow_versions.c.document).where(
    workflow_versions.c.workflow_id == bindparam("id"), workflow_versions.c.version == bindparam("version")
)


async def _one(reader: Reader, statement: Select[Any], params: dict[str, Any]) -> WorkflowRecord | None:
    row = await reader.one(statement, params)
    return None if row is None else record(WorkflowRecord, row)


async def live(reader: Reader, workspace_id: str, workflow_id: str) -> WorkflowRecord | None:
    """The workflow unless it was deleted."""
    return await _one(reader, _LIVE, {"id": workflow_id, "ws": workspace_id})


async def by_request(reader: Reader, workspace_id: str, request_id: str) -> WorkflowRecord | None:
    return await _one(reader, _BY_REQUEST, {"ws": workspace_id, "rid": request_id})


async def by_id(reader: Reader, workflow_id: str) -> WorkflowRecord | None:
    """The workflow in whatever workspace and state (the caller has checked the workspace)."""
    return await _one(reader, _BY_ID, {"id": workflow_id})


async def version_document(reader: Reader, workflow_id: str, version: int) -> str | None:
    """The definition document (JSON) of one version of a workflow."""
    row = await reader.one(_VERSION_DOCUMENT, {"id": workflow_id, "version": version})
    return None if row is None else str(row["document"])


async def page(
    reader: Reader,
    workspace_id: str,
    *,
    limit: int,
    statuses: Sequence[str] = (),
    before: tuple[float, str] | None = None,
) -> list[WorkflowRecord]:
    """The workspace's live workflows, newest first, created before `before` (time, id)."""
    statement = select(workflows).where(
        workflows.c.workspace_id == workspace_id, workflows.c.deleted_at.is_(None)
    )
    if statuses:
        statement = statement.where(workflows.c.status.in_(statuses))
    if before is not None:
        t, last_id = before
        statement = statement.where(
            or_(workflows.c.created_at < t, and_(workflows.c.created_at == t, workflows.c.id < last_id))
        )
    rows = await reader.all(
        statement.order_by(workflows.c.created_at.desc(), workflows.c.id.desc()).limit(limit)
    )
    return [record(WorkflowRecord, row) for row in rows]


async def paused_ids(reader: Reader) -> list[str]:
    """Live workflows paused by the workflow pause API (their runs start no node)."""
    rows = await reader.all(
        select(workflows.c.id).where(workflows.c.status == "paused", workflows.c.deleted_at.is_(None))
    )
    return [str(row["id"]) for row in rows]


async def runs(
    reader: Reader, workspace_id: str, workflow_id: str, statuses: Sequence[str]
) -> list[RunState]:
    """The workflow's runs in `statuses`, oldest first."""
    rows = await reader.all(
        select(executions.c.id, executions.c.status, executions.c.hold)
        .where(
            executions.c.workspace_id == workspace_id,
            executions.c.workflow_id == workflow_id,
            executions.c.status.in_(statuses),
        )
        .order_by(executions.c.created_at)
    )
    return [record(RunState, row) for row in rows]


# -- changes, committed through the writer.


def insert(
    workflow_id: str,
    workspace_id: str,
    *,
    name: str,
    description: str,
    secret_hash: str,
    request_id: str | None,
    now: float,
) -> Change:
    """A new workflow, active at version 1 (its version row is `insert_version`)."""
    return sql.INSERT_WORKFLOW, {
        "id": workflow_id,
        "workspace_id": workspace_id,
        "name": name,
        "description": description,
        "secret_hash": secret_hash,
        "request_id": request_id,
        "now": now,
    }


def insert_version(workflow_id: str, version: int, document: str, now: float) -> Change:
    return sql.INSERT_WORKFLOW_VERSION, {
        "workflow_id": workflow_id,
        "version": version,
        "document": document,
        "now": now,
    }


def update_definition(workflow_id: str, *, name: str, description: str, version: int, now: float) -> Change:
    """Move the workflow to `version`, guarded by the version before it: two updates never both win."""
    return sql.UPDATE_WORKFLOW_DEFINITION, {
        "id": workflow_id,
        "name": name,
        "description": description,
        "version": version,
        "previous_version": version - 1,
        "now": now,
    }


def rotate_secret(workflow_id: str, secret_hash: str, *, previous_until: float | None, now: float) -> Change:
    """A new webhook secret hash; the current one is kept until `previous_until` (None: dropped)."""
    return sql.ROTATE_WEBHOOK_HASH, {
        "id": workflow_id,
        "hash": secret_hash,
        "keep": previous_until is not None,
        "until": previous_until,
        "now": now,
    }


def set_status(workflow_id: str, status: str, *, expected: str, now: float) -> Change:
    """Change the status from `expected` (guarded); paused_at says since when it is paused."""
    return sql.SET_GUARDED_WORKFLOW_STATUS, {
        "id": workflow_id,
        "status": status,
        "expected": expected,
        "now": now,
        "paused_at": now if status == "paused" else None,
    }


def delete(workflow_id: str, now: float) -> Change:
    return sql.DELETE_WORKFLOW, {"id": workflow_id, "now": now}
