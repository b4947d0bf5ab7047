"""Creating a batch: check its source, queue one run per workflow, commit the batch with its items.

Runs are created QUEUED before the batch row commits, so a batch is whole or refused; nothing is
released here (engine/batches.py does that, under the batch's lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runctl_server.engine.batch_queries import batch_json
from runctl_server.engine.batch_sources import BatchEntry, resolve_source
from runctl_server.engine.model import RUNNING, new_id, now
from runctl_server.engine.start_request import StartRequest
from runctl_server.errors import InvalidArgument
from runctl_server.store import batches as stored
from runctl_server.store.records import BatchRecord
from runctl_server.store.writer import EventRecord, Mutation, WriteError, dumps

if TYPE_CHECKING:
    from runctl_server.engine.batch_parts import BatchParts
    from runctl_server.engine.queries import ExecutionView

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 100
BATCH_HOLD = "batch"  # why a batch's runs wait as queued (see Engine.start_execution)


@dataclass(frozen=True)
class BatchRequest:
    """What StartBatch asks for: exactly one of the three sources, and how to run it."""

    folder_path: str | None = None
    workflow_paths: Sequence[str] | None = None
    workflow_ids: Sequence[str] | None = None
    input: Mapping[str, Any] | None = None
    concurrency: int = 0
    request_id: str = ""
    trace_logs: bool = False
    disable_breakpoints: bool = False


def batch_concurrency(requested: int) -> int:
    """Zero means the default; anything outside 1..MAX_CONCURRENCY is refused, not clamped, since
    running more (or fewer) runs at once than asked would be a surprise."""
    if requested == 0:
        return DEFAULT_CONCURRENCY
    if not 1 <= requested <= MAX_CONCURRENCY:
        raise InvalidArgument.single(
            "concurrency", f"must be between 1 and {MAX_CONCURRENCY}", reason="FIELD_INVALID"
        )
    return requested


def batch_event(event_type: str, row: BatchRecord, payload: dict[str, Any]) -> EventRecord:
    return EventRecord(type=event_type, workspace_id=row.workspace_id, batch_id=row.id, payload=payload)


async def cancel_unstarted(parts: BatchParts, workspace_id: str, execution_ids: list[str]) -> None:
    """Cancel runs queued for a batch that never came to be."""
    await parts.control.stop_many(workspace_id, execution_ids, "its batch could not be started")


async def create_batch(parts: BatchParts, workspace_id: str, request: BatchRequest) -> str:
    """Answers the new batch's id, or the existing one when another process committed a batch with
    the same request id first."""
    concurrency = batch_concurrency(request.concurrency)
    parts.checked_input(request.input)
    source = await resolve_source(
        parts,
        workspace_id,
        folder_path=request.folder_path,
        workflow_paths=request.workflow_paths,
        workflow_ids=request.workflow_ids,
    )
    batch_id = new_id("batch")

    async def queue(entry: BatchEntry) -> ExecutionView:
        return await parts.start_run(
            StartRequest(
                workspace_id=workspace_id,
                workflow_id=entry.workflow_id,
                workflow_path=entry.real_path,
                input=request.input,
                trace_logs=request.trace_logs,
                disable_breakpoints=request.disable_breakpoints,
                batch_id=batch_id,
                queued=BATCH_HOLD,
            )
        )

    # The queued runs commit together (group commit). A failure here (a file changed since it was
    # checked) cancels the runs already queued, so no half batch is left behind.
    created = await asyncio.gather(*(queue(entry) for entry in source.entries), return_exceptions=True)
    run_ids = [view.row.id for view in created if not isinstance(view, BaseException)]
    failure = next((error for error in created if isinstance(error, BaseException)), None)
    if failure is not None:
        await cancel_unstarted(parts, workspace_id, run_ids)
        raise failure
    batch = BatchRecord(
        id=batch_id,
        workspace_id=workspace_id,
        status=RUNNING,
        source_type=source.kind,
        folder_path=source.folder_path,
        concurrency=concurrency,
        total=len(run_ids),
        input=dumps(dict(request.input or {})),
        request_id=request.request_id or None,
        created_at=now(),
        ended_at=None,
    )
    mutation = Mutation()
    mutation.add(*stored.insert(batch))
    for position, (entry, execution_id) in enumerate(zip(source.entries, run_ids, strict=True)):
        mutation.add(
            *stored.insert_item(
                batch_id,
                position,
                execution_id,
                workflow_id=entry.workflow_id or None,
                workflow_path=entry.workflow_path or None,
                workflow_file_name=entry.file_name or None,
            )
        )
    counts = await parts.queries.counts(batch_id)
    mutation.emit(batch_event("BATCH_STARTED", batch, {"batch": batch_json(batch, counts)}))
    try:
        await parts.writer.commit(mutation)
    except WriteError:
        await cancel_unstarted(parts, workspace_id, run_ids)
        existing = (
            await parts.queries.by_request(workspace_id, request.request_id) if request.request_id else None
        )
        if existing is None:
            raise
        return existing
    return batch_id
