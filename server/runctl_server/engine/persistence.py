"""Between a Run in memory and its rows: mutations for the writer, and loading a run back."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runctl_server.engine.definition import Definition, parse_definition, subworkflow_paths
from runctl_server.engine.files import path_problem
from runctl_server.engine.model import NodeRecord, Run
from runctl_server.errors import FieldViolation, InvalidArgument
from runctl_server.nodes.base import NodeType
from runctl_server.settings import Limits
from runctl_server.store import executions, workflows
from runctl_server.store.reads import Reader
from runctl_server.store.records import NodeStateRecord
from runctl_server.store.writer import Change, Mutation, Writer, dumps


def _json(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def run_change(run: Run) -> Change:
    """The run's row as its driver holds it now."""
    return executions.update_run(
        run.id,
        status=run.status,
        current_node_id=run.current_node_id,
        paused_node_id=run.paused_node_id,
        pause_reason=run.pause_reason,
        trace_logs=run.trace_logs,
        breakpoints_disabled=run.breakpoints_disabled,
        error=_json(run.error),
        started_at=run.started_at,
        ended_at=run.ended_at,
        updated_at=run.ended_at or run.started_at or run.created_at,
        parked=run.parked,
        hold=run.hold,
    )


def node_change(execution_id: str, record: NodeRecord) -> Change:
    """The node's state as its run's driver holds it now."""
    return executions.upsert_node(
        execution_id,
        record.key,
        node_id=record.node_id,
        node_type=record.node_type,
        status=record.status,
        attempts=record.attempts,
        output=_json(record.output),
        error=_json(record.error),
        branches=_json(record.branches),
        stack=_json(record.stack or None),
        scheduled_at=record.scheduled_at,
        started_at=record.started_at,
        completed_at=record.completed_at,
        stopped_at=record.stopped_at,
        failed_at=record.failed_at,
        wake_at=record.wake_at,
        logs=_json(record.logs or None),
        state=_json(record.state),
    )


def record_from_row(row: NodeStateRecord) -> NodeRecord:
    return NodeRecord(
        key=row.node_key,
        node_id=row.node_id,
        node_type=row.node_type,
        status=row.status,
        attempts=row.attempts,
        output=_load(row.output),
        error=_load(row.error),
        branches=_load(row.branches),
        stack=_load(row.stack) or [],
        scheduled_at=row.scheduled_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        stopped_at=row.stopped_at,
        failed_at=row.failed_at,
        wake_at=row.wake_at,
        logs=_load(row.logs) or [],
        state=_load(row.state),
    )


class RunStore:
    """The engine's door to storage for runs: writes through the group-commit writer, reads in threads."""

    def __init__(
        self,
        writer: Writer,
        reader: Reader,
        node_types: Mapping[str, NodeType],
        *,
        max_nodes: int = Limits.max_workflow_nodes,
        workflows_dirs: Sequence[Path] = (),
    ) -> None:
        self.workflows_dirs = tuple(workflows_dirs)
        self.writer = writer
        self.reader = reader
        self.node_types = node_types
        self.max_nodes = max_nodes
        self._definitions: OrderedDict[tuple[str, int], Definition] = OrderedDict()

    def mutation_for(self, run: Run) -> Mutation:
        """Everything about `run` not yet committed, as one mutation; clears the run's dirty marks."""
        mutation = Mutation(statements=list(run.statements), events=run.events)
        run.statements = []
        run.events = []
        if run.row_dirty:
            mutation.statements.append(run_change(run))
            run.row_dirty = False
        for key in run.dirty:
            mutation.statements.append(node_change(run.id, run.nodes[key]))
        run.dirty.clear()
        return mutation

    def insert_run(
        self, run: Run, *, document: str | None, request_id: str | None, owner: str | None = None
    ) -> Mutation:
        """The new run's row; a run that starts at once is leased to `owner` (epoch 1), a queued one to
        nobody until it is released."""
        mutation = Mutation()
        mutation.statements.append(
            executions.insert_run(
                run.id,
                workspace_id=run.workspace_id,
                workflow_id=run.workflow_id,
                workflow_version=run.workflow_version,
                document=document,
                name=run.name,
                source_path=run.source_path,
                status=run.status,
                input=dumps(run.input),
                current_node_id=run.current_node_id,
                paused_node_id=run.paused_node_id,
                pause_reason=run.pause_reason,
                trace_logs=run.trace_logs,
                breakpoints_disabled=run.breakpoints_disabled,
                error=_json(run.error),
                batch_id=run.batch_id,
                parent_execution_id=run.parent_execution_id,
                parent_node_key=run.parent_node_key,
                request_id=request_id,
                created_at=run.created_at,
                started_at=run.started_at,
                ended_at=run.ended_at,
                parked=run.parked,
                hold=run.hold,
                lease_owner=owner,
                lease_epoch=run.lease_epoch,
                trace_parent=run.trace_parent,
            )
        )
        mutation.events.extend(run.events)
        run.events = []
        run.row_dirty = False
        return mutation

    def parse(self, document: Mapping[str, Any]) -> Definition:
        """A new document a request sends: validated, within the node limit, its sub-workflow paths
        inside the workflow folders (checked now, not when the node runs)."""
        definition = parse_definition(document, self.node_types, max_nodes=self.max_nodes)
        violations = [
            FieldViolation(f"{where}.config.workflowPath", problem)
            for where, path in subworkflow_paths(definition.document)
            if (problem := path_problem(path, self.workflows_dirs)) is not None
        ]
        if violations:
            count = len(violations)
            raise InvalidArgument(
                f"workflow definition is invalid: {count} {'problem' if count == 1 else 'problems'}",
                violations,
                reason="WORKFLOW_DEFINITION_INVALID",
            )
        return definition

    def _parse_stored(self, document: Mapping[str, Any]) -> Definition:
        # Accepted once already: a node limit lowered since must not strand its runs.
        return parse_definition(document, self.node_types, max_nodes=sys.maxsize)

    async def definition_of(
        self, document: str | None, workflow_id: str | None, workflow_version: int | None
    ) -> Definition:
        """The definition a run started with: its own document, or its workflow's version (cached)."""
        if document is not None:
            return self._parse_stored(json.loads(document))
        cache_key = (str(workflow_id), int(workflow_version or 0))
        cached = self._definitions.get(cache_key)
        if cached is not None:
            self._definitions.move_to_end(cache_key)
            return cached
        document = await workflows.version_document(self.reader, cache_key[0], cache_key[1])
        if document is None:
            raise LookupError(f"workflow {cache_key[0]} version {cache_key[1]} is missing")
        definition = self._parse_stored(json.loads(document))
        self._definitions[cache_key] = definition
        if len(self._definitions) > 256:
            self._definitions.popitem(last=False)
        return definition

    async def load_run(self, execution_id: str) -> Run | None:
        found = await executions.run_and_nodes(self.reader, execution_id)
        if found is None:
            return None
        row, nodes = found
        run = Run(
            id=row.id,
            workspace_id=row.workspace_id,
            definition=await self.definition_of(row.document, row.workflow_id, row.workflow_version),
            input=json.loads(row.input),
            name=row.name,
            workflow_id=row.workflow_id,
            workflow_version=row.workflow_version,
            batch_id=row.batch_id,
            status=row.status,
            trace_logs=bool(row.trace_logs),
            breakpoints_disabled=bool(row.breakpoints_disabled),
            current_node_id=row.current_node_id,
            paused_node_id=row.paused_node_id,
            pause_reason=row.pause_reason,
            error=_load(row.error),
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            parent_execution_id=row.parent_execution_id,
            parent_node_key=row.parent_node_key,
            source_path=row.source_path,
            trace_parent=row.trace_parent,
            parked=bool(row.parked),
            hold=row.hold,
            parked_committed=bool(row.parked),
        )
        for node_row in nodes:
            record = record_from_row(node_row)
            run.nodes[record.key] = record
            if record.status == "completed" and not record.stack:
                run.outputs[record.node_id] = {"output": record.output}
        return run
