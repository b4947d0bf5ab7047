"""Read side of batches: one batch with its counts and runs, pages of batches, and the batch as an
event payload."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runctl_server.engine.model import COMPLETED, ERROR, PAUSED, QUEUED, RUNNING, STOPPED, now
from runctl_server.engine.paging import decode_token, encode_token
from runctl_server.errors import InvalidArgument, NotFound
from runctl_server.store import batches as stored
from runctl_server.store.reads import Reader
from runctl_server.store.records import BatchItemRecord, BatchRecord, BatchRunCount

BATCH_STATUSES = (RUNNING, COMPLETED, ERROR, STOPPED)
DEFAULT_LIST_SIZE = 20
MAX_LIST_SIZE = 100


@dataclass(frozen=True)
class BatchCounts:
    """Runs of a batch by status; `running` counts paused runs too (both hold a concurrency slot)."""

    completed: int = 0
    running: int = 0
    queued: int = 0
    failed: int = 0
    stopped: int = 0
    paused: int = 0

    @classmethod
    def of(cls, by_status: Mapping[str, int]) -> BatchCounts:
        return cls(
            completed=by_status.get(COMPLETED, 0),
            running=by_status.get(RUNNING, 0) + by_status.get(PAUSED, 0),
            queued=by_status.get(QUEUED, 0),
            failed=by_status.get(ERROR, 0),
            stopped=by_status.get(STOPPED, 0),
            paused=by_status.get(PAUSED, 0),
        )

    @property
    def active(self) -> int:
        return self.running + self.queued


@dataclass(frozen=True)
class BatchView:
    """A batch as stored: its row, run counts, its runs in source order (when asked for), last sequence."""

    row: BatchRecord
    counts: BatchCounts
    items: list[BatchItemRecord] = field(default_factory=list)
    last_sequence: int = 0


@dataclass(frozen=True)
class BatchPage:
    batches: list[BatchView]
    total: int
    limit: int
    offset: int
    next_token: str


def not_found(batch_id: str) -> NotFound:
    return NotFound(f"batch {batch_id!r} not found", reason="BATCH_NOT_FOUND")


def _counts(counts: Sequence[BatchRunCount]) -> BatchCounts:
    return BatchCounts.of({count.status: count.n for count in counts})


def _size(requested: int, field_name: str) -> int:
    if requested < 0:
        raise InvalidArgument.single(field_name, "must not be negative", reason="FIELD_INVALID")
    return min(requested or DEFAULT_LIST_SIZE, MAX_LIST_SIZE)


class BatchQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    async def by_request(self, workspace_id: str, request_id: str) -> str | None:
        return await stored.id_by_request(self._reader, workspace_id, request_id)

    async def row(self, workspace_id: str, batch_id: str) -> BatchRecord:
        row = await stored.batch(self._reader, batch_id, workspace_id)
        if row is None:
            raise not_found(batch_id)
        return row

    async def counts(self, batch_id: str) -> BatchCounts:
        return _counts(await stored.counts(self._reader, [batch_id]))

    async def item(self, execution_id: str) -> BatchItemRecord | None:
        return await stored.item_of_run(self._reader, execution_id)

    async def get(self, workspace_id: str, batch_id: str, *, items: bool = True) -> BatchView:
        if not batch_id:
            raise InvalidArgument.single("batch_id", "is required", reason="FIELD_REQUIRED")
        found = await stored.snapshot(self._reader, batch_id, workspace_id, items=items)
        if found is None:
            raise not_found(batch_id)
        return BatchView(
            row=found.batch,
            counts=_counts(found.counts),
            items=found.items,
            last_sequence=found.last_sequence,
        )

    async def list(
        self,
        workspace_id: str,
        *,
        statuses: tuple[str, ...] = (),
        limit: int = 0,
        offset: int = 0,
        page_size: int = 0,
        page_token: str = "",
    ) -> BatchPage:
        """Newest first. Offset paging (the local runner API's HTTP route's `limit`/`offset`) or keyset page
        tokens (BatchService.ListBatches, AIP-158), not both. The offset is applied in the database, so
        a large one costs no walk through the pages before it."""
        if (limit or offset) and (page_size or page_token):
            raise InvalidArgument.single(
                "page_token",
                "use limit/offset or page_size/page_token, not both",
                reason="PAGE_TOKEN_INVALID",
            )
        if unknown := [status for status in statuses if status not in BATCH_STATUSES]:
            raise InvalidArgument.single(
                "statuses", f"unknown batch status {unknown[0]!r}", reason="FIELD_INVALID"
            )
        if offset < 0:
            raise InvalidArgument.single("offset", "must not be negative", reason="FIELD_INVALID")
        size = _size(page_size, "page_size") if (page_size or page_token) else _size(limit, "limit")
        position = decode_token(page_token, ("t", "id"), filters={"statuses": frozenset(statuses)})
        rows, total = await stored.page(
            self._reader,
            workspace_id,
            limit=size + 1,
            offset=offset,
            statuses=statuses,
            before=None if position is None else (position["t"], position["id"]),
        )
        next_token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            next_token = encode_token(
                {"t": last.created_at, "id": last.id}, {"statuses": frozenset(statuses)}
            )
        counts = await self._counts_of([row.id for row in rows])
        return BatchPage(
            batches=[BatchView(row=row, counts=counts.get(row.id, BatchCounts())) for row in rows],
            total=total,
            limit=size,
            offset=offset,
            next_token=next_token,
        )

    async def _counts_of(self, batch_ids: Sequence[str]) -> dict[str, BatchCounts]:
        if not batch_ids:
            return {}
        by_batch: dict[str, dict[str, int]] = {}
        for count in await stored.counts(self._reader, batch_ids):
            by_batch.setdefault(count.batch_id, {})[count.status] = count.n
        return {batch_id: BatchCounts.of(statuses) for batch_id, statuses in by_batch.items()}


# -- event payloads: the proto JSON form of Batch and BatchItem, so a watcher can parse them as such.


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _without_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "", 0)}


def batch_json(row: BatchRecord, counts: BatchCounts) -> dict[str, Any]:
    """Batch (without executions) in proto JSON, as BATCH_* events carry it."""
    ended = row.ended_at
    return _without_empty(
        {
            "batchId": row.id,
            "status": f"BATCH_STATUS_{row.status.upper()}",
            "sourceType": f"BATCH_SOURCE_TYPE_{row.source_type.upper()}",
            "folderPath": row.folder_path,
            "totalWorkflows": int(row.total),
            "completed": counts.completed,
            "running": counts.running,
            "queued": counts.queued,
            "failed": counts.failed,
            "stopped": counts.stopped,
            "paused": counts.paused,
            "concurrency": int(row.concurrency),
            "startTime": _time(row.created_at),
            "endTime": _time(ended),
            "duration": f"{(ended if ended is not None else now()) - row.created_at:.3f}s",
            "requestId": row.request_id,
        }
    )


def item_json(item: BatchItemRecord) -> dict[str, Any]:
    """BatchItem in proto JSON."""
    error = json.loads(item.error) if item.error else {}
    return _without_empty(
        {
            "executionId": item.execution_id,
            "workflowId": item.workflow_id,
            "workflowFileName": item.workflow_file_name,
            "workflowPath": item.workflow_path,
            "status": f"EXECUTION_STATUS_{str(item.status or 'unspecified').upper()}",
            "currentNodeId": item.current_node_id,
            "error": error.get("message", ""),
            "startTime": _time(item.started_at),
            "endTime": _time(item.ended_at),
        }
    )
