"""Batches: many runs started together from workflow files or workflow ids, run with a concurrency limit.

Every run of a batch is created QUEUED up front (so a batch is whole or refused), then released in
source order as slots free up: at start, whenever one of its runs ends, and after a restart. The
database is the truth about slots (runs RUNNING or PAUSED hold one), so a restart needs no memory of
what was released. One lock per batch keeps its releases, its end and a stop from interleaving; with
replicas it is also a PostgreSQL advisory lock, so the concurrency limit holds for the whole cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from runctl_server.engine.batch_creation import (
    BATCH_HOLD,
    BatchRequest,
    batch_event,
    cancel_unstarted,
    create_batch,
)
from runctl_server.engine.batch_parts import BatchParts
from runctl_server.engine.batch_queries import batch_json, item_json
from runctl_server.engine.control import StopCounts
from runctl_server.engine.model import COMPLETED, RUNNING, STOPPED, Run, now
from runctl_server.errors import FailedPrecondition, InvalidArgument
from runctl_server.store import batches as stored
from runctl_server.store.locks import advisory_lock
from runctl_server.store.records import BatchRecord
from runctl_server.store.writer import EventRecord, Mutation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClearOutcome:
    batches_deleted: int
    executions_deleted: int
    skipped_batch_ids: list[str]


class BatchLock:
    """One batch's lock: this process's callers queue on an asyncio lock; replicas on an advisory lock."""

    def __init__(self, dsn: str | None, batch_id: str) -> None:
        self._local = asyncio.Lock()
        self._dsn = dsn
        self._key = f"runctl-batch:{batch_id}"
        self._cluster: contextlib.AbstractAsyncContextManager[None] | None = None

    def locked(self) -> bool:
        return self._local.locked()

    async def __aenter__(self) -> None:
        await self._local.acquire()
        if self._dsn is None:
            return
        try:
            self._cluster = advisory_lock(self._dsn, self._key)
            await self._cluster.__aenter__()
        except BaseException:
            self._cluster = None
            self._local.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                await cluster.__aexit__(None, None, None)
        finally:
            self._local.release()


class Batches:
    """Starts, tracks, stops and clears batches."""

    def __init__(self, parts: BatchParts) -> None:
        self._parts = parts
        self._queries = parts.queries
        self._locks: dict[str, BatchLock] = {}
        self._starting: dict[tuple[str, str], asyncio.Future[str]] = {}

    def _lock(self, batch_id: str) -> BatchLock:
        return self._locks.setdefault(batch_id, BatchLock(self._parts.cluster_dsn, batch_id))

    def _forget(self, batch_id: str) -> None:
        """An ended batch changes no more, so its lock is no longer needed."""
        lock = self._locks.get(batch_id)
        if lock is not None and not lock.locked():
            del self._locks[batch_id]

    # -- starting -------------------------------------------------------------------------------

    async def start_batch(
        self,
        workspace_id: str,
        *,
        folder_path: str | None = None,
        workflow_paths: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        input: Mapping[str, Any] | None = None,
        concurrency: int = 0,
        request_id: str = "",
        trace_logs: bool = False,
        disable_breakpoints: bool = False,
    ) -> str:
        """Create every run queued, commit the batch, release the first runs; answers the batch id.
        The same `request_id` answers the batch the first call started."""
        request = BatchRequest(
            folder_path, workflow_paths, workflow_ids, input, concurrency, request_id, trace_logs,
            disable_breakpoints,
        )  # fmt: skip
        if not request_id:
            return await self._start(workspace_id, request)
        key = (workspace_id, request_id)
        pending = self._starting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        existing = await self._queries.by_request(workspace_id, request_id)
        if existing is not None:
            return existing
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._starting[key] = future
        try:
            batch_id = await self._start(workspace_id, request)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent callers get it, nobody else must
            raise
        finally:
            self._starting.pop(key, None)
        future.set_result(batch_id)
        return batch_id

    async def _start(self, workspace_id: str, request: BatchRequest) -> str:
        batch_id = await create_batch(self._parts, workspace_id, request)
        async with self._lock(batch_id):
            await self._fill(batch_id)
        return batch_id

    # -- releasing runs as slots free up -------------------------------------------------------------

    async def _fill(self, batch_id: str) -> BatchRecord | None:
        """Release queued runs, in source order, into the batch's free slots (the caller holds its lock);
        answers the batch's row while it is running, None once it has ended (or never came to be)."""
        row = await stored.batch(self._parts.reader, batch_id)
        if row is None or row.status != RUNNING:
            return None
        counts = await self._queries.counts(batch_id)
        free = row.concurrency - counts.running
        refused: set[str] = set()
        while free > 0:
            candidates = await stored.queued_runs(self._parts.reader, batch_id, free + len(refused))
            fresh = [execution_id for execution_id in candidates if execution_id not in refused]
            if not fresh:
                break
            for execution_id in fresh[:free]:
                if await self._parts.control.release_queued(execution_id, (BATCH_HOLD,)):
                    free -= 1
                else:  # stopped meanwhile: not ours to start
                    refused.add(execution_id)
        return row

    def on_run_finished(self, run: Run) -> None:
        """A run ended: its batch (if any) may release the next queued run."""
        if run.batch_id is None:
            return
        self._parts.in_background(self._after_run(run.batch_id, run.id))

    async def _after_run(self, batch_id: str, execution_id: str) -> None:
        try:
            await self._advance(batch_id, execution_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Batches.start takes the same step at the next start, so the batch is not stuck for good.
            log.exception("could not advance batch %s after run %s ended", batch_id, execution_id)

    async def _advance(self, batch_id: str, execution_id: str = "") -> None:
        """Fill the batch's free slots and record its progress; forget its lock once it has ended."""
        async with self._lock(batch_id):
            row = await self._fill(batch_id)
            still_running = row is not None and await self._record_progress(row, execution_id)
        if not still_running:
            self._forget(batch_id)

    async def _record_progress(self, running: BatchRecord, execution_id: str = "") -> bool:
        """Commit the batch's new counts; once nothing is left to run it ends COMPLETED, failed runs or
        not (the local runner API); answers whether it still runs. The caller holds the batch's lock, so
        `running` is current."""
        row = running
        counts = await self._queries.counts(row.id)
        mutation = Mutation()
        item = await self._queries.item(execution_id) if execution_id else None
        if item is not None:
            payload = {"batch": batch_json(row, counts), "item": item_json(item)}
            mutation.emit(batch_event("BATCH_UPDATED", row, payload))
        if counts.active == 0:
            row = replace(row, status=COMPLETED, ended_at=now())
            mutation.add(*stored.end(row.id, COMPLETED, row.ended_at))
            mutation.emit(batch_event("BATCH_COMPLETED", row, {"batch": batch_json(row, counts)}))
        await self._parts.writer.commit(mutation)
        return counts.active > 0

    async def start(self) -> None:
        """After a restart: give running batches their free slots again, end those whose runs all ended
        while nobody listened, and cancel runs queued for a batch that never got committed."""
        for execution_id, workspace_id in await stored.orphaned_runs(self._parts.reader):
            await cancel_unstarted(self._parts, workspace_id, [execution_id])
        for batch_id in await stored.running(self._parts.reader):
            await self._advance(batch_id)

    # -- stopping and clearing -----------------------------------------------------------------------

    async def stop(self, workspace_id: str, batch_id: str, reason: str = "") -> StopCounts:
        """End the batch STOPPED first, so nothing more is released, then stop its runs."""
        if not batch_id:
            raise InvalidArgument.single("batch_id", "is required", reason="FIELD_REQUIRED")
        await self._queries.row(workspace_id, batch_id)  # NotFound before any lock is made for it
        try:
            async with self._lock(batch_id):
                row = await self._queries.row(workspace_id, batch_id)
                if row.status != RUNNING:
                    raise FailedPrecondition(
                        f"batch {batch_id!r} has already ended ({row.status})",
                        reason="BATCH_ENDED",
                        metadata={"status": row.status},
                    )
                await self._parts.writer.commit(await self._stop_mutation([row], reason))
        finally:
            self._forget(batch_id)  # it has ended either way
        ids = await self._parts.control.active_ids(workspace_id, batch_id=batch_id)
        return await self._parts.control.stop_many(
            workspace_id, ids, reason or f"its batch {batch_id} was stopped"
        )

    async def _stop_mutation(self, rows: Sequence[BatchRecord], reason: str) -> Mutation:
        mutation = Mutation()
        stamp = now()
        for row in rows:
            stopped = replace(row, status=STOPPED, ended_at=stamp)
            counts = await self._queries.counts(row.id)
            mutation.add(*stored.end(row.id, STOPPED, stamp))
            payload = {"batch": batch_json(stopped, counts), "reason": reason or "stopped"}
            mutation.emit(batch_event("BATCH_STOPPED", stopped, payload))
        return mutation

    async def stop_all(self, workspace_id: str) -> list[str]:
        """Mark every running batch stopped (their runs are stopped by the caller); answers their ids."""
        listed = await stored.running(self._parts.reader, workspace_id)
        ids = sorted(listed)  # one lock order, so two callers never deadlock
        async with contextlib.AsyncExitStack() as stack:
            rows = []
            for batch_id in ids:
                await stack.enter_async_context(self._lock(batch_id))
                row = await self._queries.row(workspace_id, batch_id)
                if row.status == RUNNING:  # it may have ended while we waited for its lock
                    rows.append(row)
            await self._parts.writer.commit(await self._stop_mutation(rows, "stopped with all other runs"))
        for row in rows:
            self._forget(row.id)
        order = {batch_id: index for index, batch_id in enumerate(listed)}
        return sorted((row.id for row in rows), key=order.__getitem__)

    async def clear(self, workspace_id: str) -> ClearOutcome:
        """Delete every ended batch of the workspace with its runs and their events (as in the
        local runner API, the history is removed for good); running ones are kept and listed."""
        rows = await stored.for_clearing(self._parts.reader, workspace_id)
        ended = [row for row in rows if row.status != RUNNING and row.active == 0]
        ended_ids = {row.id for row in ended}
        skipped = [row.id for row in rows if row.id not in ended_ids]
        outcome = ClearOutcome(len(ended), sum(row.runs for row in ended), skipped)
        if not ended:
            return outcome
        mutation = Mutation()
        for row in ended:
            mutation.statements.extend(stored.clear(row.id))
        cleared = {
            "batchesDeleted": outcome.batches_deleted,
            "executionsDeleted": outcome.executions_deleted,
            "skippedBatchIds": skipped,
        }
        mutation.emit(
            EventRecord(type="BATCHES_CLEARED", workspace_id=workspace_id, payload={"cleared": cleared})
        )
        await self._parts.writer.commit(mutation)
        self._parts.ended.batches_cleared(workspace_id)
        return outcome
