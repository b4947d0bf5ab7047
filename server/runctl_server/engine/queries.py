"""Read side of runs: one run with its nodes, lists with filters and page tokens, history."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runctl_server.engine.ended_runs import EndedRuns
from runctl_server.engine.model import ACTIVE_EXECUTION, FINISHED_EXECUTION
from runctl_server.engine.paging import decode_token, encode_token, page_size
from runctl_server.errors import InvalidArgument, NotFound
from runctl_server.store import event_log, executions, workflows
from runctl_server.store.reads import Reader
from runctl_server.store.records import LoggedEvent, NodeStateRecord, PausePointRecord, RunRecord

EXECUTION_STATUSES = (*ACTIVE_EXECUTION, *FINISHED_EXECUTION)


@dataclass(frozen=True)
class NodeTally:
    """A run's node runs per status, loop iterations included, and its top-level nodes not yet run."""

    by_status: Mapping[str, int]
    unreached: int


@dataclass(frozen=True)
class ExecutionView:
    """A run as stored: its row, node rows, definition document, open pause points, last sequence."""

    row: RunRecord
    nodes: list[NodeStateRecord] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    pause_points: list[PausePointRecord] = field(default_factory=list)
    last_sequence: int = 0
    tally: NodeTally | None = None


def top_level_nodes(document_text: str | None) -> int:
    """How many nodes a stored workflow document has at its top level."""
    document = json.loads(document_text) if document_text else {}
    nodes = document.get("nodes") if isinstance(document, dict) else None
    return len(nodes) if isinstance(nodes, list) else 0


def tally(counts: Iterable[tuple[str, bool, int]], top_level: int) -> NodeTally:
    """The tally of (status, is top-level, how many) groups of a run with `top_level` nodes."""
    by_status: dict[str, int] = {}
    reached = 0
    for status, top, n in counts:
        by_status[status] = by_status.get(status, 0) + n
        reached += n if top else 0
    return NodeTally(by_status, max(top_level - reached, 0))


@dataclass(frozen=True)
class Page:
    rows: list[RunRecord]
    next_token: str
    total: int = 0


@dataclass(frozen=True)
class EventPage:
    events: list[LoggedEvent]
    next_token: str


def _not_found(execution_id: str) -> NotFound:
    return NotFound(f"execution {execution_id!r} not found", reason="EXECUTION_NOT_FOUND")


class Queries:
    def __init__(self, reader: Reader, ended_runs_kept: int) -> None:
        self._reader = reader
        self._top_level: dict[tuple[str, int], int] = {}
        self.ended: EndedRuns[ExecutionView] = EndedRuns(ended_runs_kept)

    @staticmethod
    def basic(row: RunRecord, node_tally: NodeTally | None = None) -> ExecutionView:
        """A view of a listed row, without nodes or definition."""
        return ExecutionView(row=row, tally=node_tally)

    async def execution_by_request(self, workspace_id: str, request_id: str) -> str | None:
        return await executions.run_id_by_request(self._reader, workspace_id, request_id)

    async def execution(self, workspace_id: str, execution_id: str, *, full: bool = True) -> ExecutionView:
        """The run as stored; an ended run from memory when it was read before (see ended_runs.py)."""
        if not execution_id:
            raise InvalidArgument.single("execution_id", "is required", reason="FIELD_REQUIRED")
        kept = self.ended.get(workspace_id, execution_id, full)
        if kept is not None:
            return kept
        version = self.ended.reading(execution_id)
        view = None
        try:
            view = await self._read_execution(workspace_id, execution_id, full=full)
            return view
        finally:
            self.ended.done(execution_id, version, view, full)

    async def _read_execution(self, workspace_id: str, execution_id: str, *, full: bool) -> ExecutionView:
        found = await executions.snapshot(self._reader, execution_id, workspace_id, full=full)
        if found is None:
            raise _not_found(execution_id)
        row = found.run
        document: dict[str, Any] = {}
        if full:
            text = row.document or found.version_document
            document = json.loads(text) if text else {}
            counts = [(n.status, n.stack is None, 1) for n in found.nodes]
            node_tally = tally(counts, len(document.get("nodes", [])))
        else:
            groups = [(count.status, count.top, count.n) for count in found.node_counts]
            node_tally = tally(groups, await self._top_level_nodes(row))
        return ExecutionView(
            row=row,
            nodes=found.nodes,
            document=document,
            pause_points=found.pause_points,
            last_sequence=found.last_sequence,
            tally=node_tally,
        )

    async def _top_level_nodes(self, row: RunRecord) -> int:
        """Top-level nodes of the definition a run started with; a workflow version's count is cached
        (versions never change)."""
        if row.document is not None:
            return top_level_nodes(row.document)
        key = (str(row.workflow_id), int(row.workflow_version or 0))
        if key not in self._top_level:
            document = await workflows.version_document(self._reader, key[0], key[1])
            if len(self._top_level) >= 4096:
                self._top_level.clear()
            self._top_level[key] = top_level_nodes(document)
        return self._top_level[key]

    async def tallies(self, rows: Sequence[RunRecord]) -> dict[str, NodeTally]:
        """The node tallies of listed runs, in one query."""
        ids = [str(row.id) for row in rows]
        if not ids:
            return {}
        groups: dict[str, list[tuple[str, bool, int]]] = {}
        for count in await executions.node_counts(self._reader, ids):
            groups.setdefault(count.execution_id, []).append((count.status, count.top, count.n))
        return {
            str(row.id): tally(groups.get(str(row.id), []), await self._top_level_nodes(row)) for row in rows
        }

    async def last_sequence(self, execution_id: str) -> int:
        return await executions.last_sequence(self._reader, execution_id)

    async def most_recent(self, workspace_id: str, statuses: tuple[str, ...] = ()) -> RunRecord | None:
        """The most recently created run in one of `statuses` (any when empty), for the local runner API's
        HTTP routes that default to "the most recent" run; no gRPC call has such a default."""
        return await executions.most_recent(self._reader, workspace_id, statuses)

    async def status(self, workspace_id: str, execution_id: str) -> RunRecord:
        """The row of a run (NOT_FOUND when it is not the workspace's)."""
        if not execution_id:
            raise InvalidArgument.single("execution_id", "is required", reason="FIELD_REQUIRED")
        row = await executions.run(self._reader, execution_id, workspace_id)
        if row is None:
            raise _not_found(execution_id)
        return row

    async def list(
        self,
        workspace_id: str,
        *,
        size: int = 0,
        token: str = "",
        workflow_id: str = "",
        batch_id: str = "",
        statuses: tuple[str, ...] = (),
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> Page:
        """Newest first, filtered, with an opaque keyset token. `created_after` (inclusive) and
        `created_before` (exclusive) are epoch seconds."""
        limit = page_size(size)
        asked: dict[str, Any] = {
            "workflow_id": workflow_id,
            "batch_id": batch_id,
            "statuses": frozenset(statuses),
        }
        # Only when given, so tokens handed out before these filters existed stay valid.
        if created_after is not None:
            asked["created_after"] = created_after
        if created_before is not None:
            asked["created_before"] = created_before
        position = decode_token(token, ("t", "id"), filters=asked)
        bad = [s for s in statuses if s not in EXECUTION_STATUSES]
        if bad:
            raise InvalidArgument.single("statuses", f"unknown status {bad[0]!r}", reason="FIELD_INVALID")
        total, rows = await executions.page(
            self._reader,
            workspace_id,
            limit=limit + 1,
            workflow_id=workflow_id,
            batch_id=batch_id,
            statuses=statuses,
            created_after=created_after,
            created_before=created_before,
            before=None if position is None else (position["t"], position["id"]),
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = encode_token({"t": rows[-1].created_at, "id": rows[-1].id}, asked)
        return Page(rows, next_token, total)

    async def history(
        self, workspace_id: str, execution_id: str, *, after_sequence: int = 0, size: int = 0, token: str = ""
    ) -> EventPage:
        """The run's events in sequence order, after a cursor."""
        await self.status(workspace_id, execution_id)
        if after_sequence < 0:
            raise InvalidArgument.single("after_sequence", "must not be negative", reason="FIELD_INVALID")
        limit = page_size(size, default=500)
        filters = {"execution_id": execution_id}
        position = decode_token(token, ("s",), numbers=("s",), filters=filters)
        start = max(after_sequence, int(position["s"]) if position else 0)
        events = await event_log.run_events(self._reader, execution_id, after=start, limit=limit + 1)
        next_token = ""
        if len(events) > limit:
            events = events[:limit]
            next_token = encode_token({"s": events[-1].sequence}, filters)
        return EventPage(events, next_token)
