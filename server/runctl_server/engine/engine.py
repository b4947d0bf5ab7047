"""The engine's public face: what api/ and http/ call. No gRPC and no HTTP in here."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine as DatabaseEngine

from runctl_server.clock import SYSTEM_CLOCK, Clock
from runctl_server.engine.batch_parts import BatchParts
from runctl_server.engine.batch_queries import BatchQueries
from runctl_server.engine.batches import Batches
from runctl_server.engine.cluster import Cluster
from runctl_server.engine.commands import COMMANDS
from runctl_server.engine.control import RunControl
from runctl_server.engine.definition import Definition, load_document
from runctl_server.engine.ended_runs import DEFAULT_CAPACITY as DEFAULT_ENDED_RUNS_KEPT
from runctl_server.engine.files import resolve_under_roots
from runctl_server.engine.messages import ChildCompleted, ChildFailed, Command, Wake
from runctl_server.engine.model import (
    COMPLETED,
    FINISHED_EXECUTION,
    QUEUED,
    RUNNING,
    WORKFLOW_PAUSED,
    NodeRecord,
    Run,
    new_id,
    now,
)
from runctl_server.engine.persistence import RunStore
from runctl_server.engine.queries import ExecutionView, NodeTally, Queries
from runctl_server.engine.resumes import Resumes
from runctl_server.engine.scheduler import Scheduler
from runctl_server.engine.start_request import StartRequest
from runctl_server.engine.tasks import TaskDispatcher
from runctl_server.engine.workflow_control import WorkflowControl
from runctl_server.engine.workflow_holds import WorkflowHolds
from runctl_server.engine.workflows import DEFAULT_SECRET_OVERLAP_SECONDS, Workflows
from runctl_server.errors import FailedPrecondition, InvalidArgument, RunctlError
from runctl_server.events.follow import EventFilter, Follower
from runctl_server.events.hub import EventHub
from runctl_server.events.relay import EventRelay
from runctl_server.nodes.base import NodeFailure, NodeType
from runctl_server.nodes.registry import load_node_types
from runctl_server.observe import tracing
from runctl_server.observe.metrics import Metrics
from runctl_server.settings import Limits
from runctl_server.store import event_log, executions, workflows
from runctl_server.store.notify import conninfo
from runctl_server.store.reads import Reader
from runctl_server.store.records import RunRecord, record
from runctl_server.store.writer import EventRecord, WriteError, Writer, dumps

log = logging.getLogger(__name__)

# How long each part may take to stop: a stop that waits for ever (an orchestrator then kills the
# process) tells nobody what it waited for; a bounded one names the part and goes on.
STOP_STEP_SECONDS = 5.0


async def _within(seconds: float, part: str, stopping: Awaitable[object]) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stopping
    except TimeoutError:
        log.warning("stopping: %s did not stop within %gs; going on without it", part, seconds)


class Engine:
    """Owns the writer, the event hub and the scheduler for one database."""

    def __init__(
        self,
        database: DatabaseEngine,
        *,
        workflows_dirs: Sequence[Path] = (),
        node_types: Mapping[str, NodeType] | None = None,
        watch_buffer: int = 10_000,
        ended_runs_kept: int = DEFAULT_ENDED_RUNS_KEPT,
        limits: Limits | None = None,
        secret_overlap_seconds: float = DEFAULT_SECRET_OVERLAP_SECONDS,
        replica_name: str = "",
        lease_ttl: float = 10.0,
        metrics: Metrics | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.limits = limits or Limits()
        self.metrics = metrics
        self.clock = clock
        self.hub = EventHub()
        self.watch_buffer = watch_buffer
        self.reader = Reader(database)
        self.relay = EventRelay(self.hub, self.reader)
        # On PostgreSQL other replicas may share the database: runs are leased and commits fenced.
        replicated = database.dialect.name == "postgresql"
        self.writer = Writer(database, self._committed(), fencing=replicated)
        writer = self.writer
        self.relay.committed_here = lambda: writer.committed_through
        self.relay.local_settled = writer.settled
        if metrics is not None:
            self.writer.observe_commit = metrics.commit_seconds.observe
        self.node_types = dict(node_types or load_node_types())
        self.store = RunStore(
            self.writer,
            self.reader,
            self.node_types,
            max_nodes=self.limits.max_workflow_nodes,
            workflows_dirs=tuple(workflows_dirs),
        )
        self.workflows = Workflows(self.store, secret_overlap_seconds)
        self.queries = Queries(self.reader, ended_runs_kept)
        self.hub.observers.append(self.queries.ended.observe)
        self.hub.observer_wants.append(self.queries.ended.holds_anything)
        self.workflows_dirs = tuple(workflows_dirs)
        self.http_client = httpx.AsyncClient(follow_redirects=False)
        self.scheduler = Scheduler(
            self.store,
            self.node_types,
            self.node_types["task"],
            services={"http": self.http_client, "clock": clock},
            commands=COMMANDS,
        )
        self.scheduler.timers.clock = clock
        self.scheduler.metrics = metrics
        # Workflows whose runs start no new node (the workflow pause API).
        self.workflow_holds = WorkflowHolds()
        self.scheduler.workflow_paused = self.workflow_holds.is_paused
        self.scheduler.workflow_pause_pending = self.workflow_holds.is_pending
        self._starting: dict[tuple[str, str], asyncio.Future[ExecutionView]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._cluster_dsn = conninfo(database) if replicated else None
        self.control = RunControl(self.reader, self.send, stop_batches=self._stop_batches)
        self.workflow_control = WorkflowControl(
            self.workflows, self.reader, self.writer, self.control, self.workflow_holds, replicated=replicated
        )
        self.resumes = Resumes(
            self.reader, self.store, self.send, max_resume_bytes=self.limits.max_resume_bytes
        )
        self.batch_queries = BatchQueries(self.reader)
        self.batches = Batches(
            BatchParts(
                reader=self.reader,
                writer=self.writer,
                queries=self.batch_queries,
                control=self.control,
                workflows=self.workflows,
                workflows_dirs=self.workflows_dirs,
                parse=self.store.parse,
                checked_input=self.checked_input,
                start_run=self.start_execution,
                in_background=self.in_background,
                ended=self.queries.ended,
                cluster_dsn=self._cluster_dsn,
            )
        )
        self.scheduler.on_run_finished.append(self.batches.on_run_finished)
        self.tasks = TaskDispatcher(self.scheduler.deliver, self.writer, self.reader, clock)
        self.scheduler.on_task_created.append(self.tasks.on_task_created)
        self.scheduler.on_child_start = self._on_child_start
        self.scheduler.on_run_finished.append(self._notify_parent)
        self.cluster: Cluster | None = None
        if replicated:
            self.cluster = Cluster(
                database,
                self.scheduler,
                self.relay,
                self.reader,
                name=replica_name or "runctl",
                ttl=lease_ttl,
                on_state=self._on_cluster_state,
                on_taken=self._on_taken,
                on_task=self.tasks.on_task_elsewhere,
            )
            self.scheduler.router = self.cluster
            self.scheduler.timers.refresh_seconds = min(self.scheduler.timers.refresh_seconds, lease_ttl / 2)
            cluster = self.cluster
            self.scheduler.timers.owner = lambda: cluster.replica_id

    def _committed(self) -> Callable[[list[EventRecord]], None]:
        """What the writer calls with each commit's events: counted, then published."""
        publish = self.relay.local
        if self.metrics is None:
            return publish
        count = self.metrics.events_committed

        def committed(events: list[EventRecord]) -> None:
            count(events)
            publish(events)

        return committed

    @property
    def cluster_dsn(self) -> str | None:
        """The connection string for cluster-wide locks; None when this is the only process."""
        return self._cluster_dsn

    @property
    def replica_id(self) -> str:
        """This process's id as a lease owner ("local" when it is the only process: SQLite)."""
        return self.cluster.replica_id if self.cluster is not None else "local"

    def checked_input(self, input: Mapping[str, Any] | None) -> dict[str, Any]:
        """A run's input, refused with INVALID_ARGUMENT when larger than the input limit."""
        payload = dict(input or {})
        limit = self.limits.max_input_bytes
        if len(dumps(payload)) > limit:
            raise InvalidArgument.single(
                "input", f"is larger than {limit} bytes (the input limit)", reason="PAYLOAD_TOO_LARGE"
            )
        return payload

    async def start(self) -> None:
        self.writer.start()
        self.hub.last_sequence = await event_log.last_sequence(self.reader) or 0
        self.relay.start()
        await self.reload_paused_workflows()
        if self.cluster is not None:
            await self.cluster.start()  # takes its share of the runs nobody drives
        else:
            await self.recover()
        await self.batches.start()
        await self.tasks.start()
        self.scheduler.timers.start()

    def end_streams(self) -> None:
        """Every open stream (watches, event streams, PollTasks) ends now with UNAVAILABLE
        (SHUTTING_DOWN) and its cursor, and new ones at once: the server is shutting down."""
        self.hub.close()
        self.tasks.end_streams()

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await _within(STOP_STEP_SECONDS, "the task dispatcher", self.tasks.stop())
        await _within(STOP_STEP_SECONDS, "the run drivers", self.scheduler.close())
        await _within(STOP_STEP_SECONDS, "the writer", self.writer.stop())
        if self.cluster is not None:
            # After the last commit: the runs are released for the others (or, if this cannot finish,
            # taken over when their leases expire).
            await _within(STOP_STEP_SECONDS, "the lease release", self.cluster.stop())
        await _within(STOP_STEP_SECONDS, "the event relay", self.relay.stop())
        await _within(STOP_STEP_SECONDS, "the HTTP client", self.http_client.aclose())

    async def reload_paused_workflows(self) -> None:
        """The workflows whose runs may start no node (the workflow pause API), from their status rows: shared
        by every replica, reread when any replica pauses or resumes one."""
        await self._reload_paused_workflows()

    async def _reload_paused_workflows(self) -> set[str]:
        """Answers the workflows that are no longer paused."""
        return self.workflow_holds.replace(await workflows.paused_ids(self.reader))

    async def _stop_batches(self, workspace_id: str) -> list[str]:
        return await self.batches.stop_all(workspace_id)

    async def _on_cluster_state(self, _what: str) -> None:
        resumed = await self._reload_paused_workflows()
        if resumed:
            # Runs held here by a workflow another replica resumed look at their graphs again.
            for execution_id in self.scheduler.loaded_ids:
                self.scheduler.deliver(execution_id, Command(name="refresh"))

    async def _on_taken(self, execution_ids: list[str] | None) -> None:
        """Runs this replica took over (None: a periodic look at every waiting parent, for children that
        ended on a replica that died before telling their parent)."""
        await self._recover_children(execution_ids)

    async def recover(self) -> int:
        """Pick up every run that was mid-flight when the last process stopped; answers how many."""
        rows = await executions.in_flight_ids(self.reader)
        for execution_id in rows:
            run = await self.store.load_run(execution_id)
            if run is not None and not run.finished and not self.scheduler.is_loaded(run.id):
                self.scheduler.launch(run, fresh=False)
        await self._recover_children()
        if rows:
            log.info("recovered %d in-flight runs", len(rows))
        return len(rows)

    async def recover_after_outage(self) -> int:
        """The database is back after an outage: drive again the runs of this process whose drivers
        gave up when a commit failed (their committed state is intact), and fire again the timers that
        fell due meanwhile (their runs could not be loaded then). Answers how many runs go on."""
        self.scheduler.timers.refresh_soon()
        if self.cluster is None:
            return await self.recover()
        rows = await executions.in_flight_ids(self.reader, lease_owner=self.replica_id)
        idle = [execution_id for execution_id in rows if not self.scheduler.is_loaded(execution_id)]
        for execution_id in idle:
            self.scheduler.deliver(execution_id, Wake())
        return len(idle)

    async def _recover_children(self, execution_ids: list[str] | None = None) -> None:
        """A crash may fall between a parent's commit and its child's creation, or between the child's
        end and the parent hearing of it: start each awaited child again (idempotent) and re-check it.
        With `execution_ids`, only for those parents (runs this replica just took over)."""
        rows = await executions.awaiting_children(self.reader, execution_ids)
        for row in rows:
            run = await self.store.load_run(row.execution_id)
            child = json.loads(row.state).get("child")
            if run is not None and isinstance(child, dict):
                await self._start_child(run, row.node_key, row.attempts, child)

    def in_background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `work` as a task the engine holds and cancels when it stops."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def follower(self, flt: EventFilter, heartbeat: float) -> Follower:
        """A watcher's view of the event log: catch-up from the table, then live from the hub."""
        return Follower(self.hub, self.reader, flt, buffer=self.watch_buffer, heartbeat=heartbeat)

    # -- talking to runs ----------------------------------------------------------------------------

    async def send(self, execution_id: str, command: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run the driver command `command` (engine/commands.py) inside the run's driver, on whichever
        replica drives it; answers its result once the changes it made are committed, or None when the
        run has ended (or does not exist) and the command never ran."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        message = Command(
            name=command,
            args=dict(args or {}),
            # The command's span, in the run's trace, links the call.
            traceparent=tracing.current_traceparent(),
            reply=reply,
        )
        self.scheduler.deliver(execution_id, message)
        return await reply

    # -- starting runs -----------------------------------------------------------------------------

    async def _resolve_source(
        self,
        workspace_id: str,
        workflow_id: str,
        document: Mapping[str, Any] | None,
        workflow_path: str,
        workflow_version: int = 0,
    ) -> tuple[Definition, dict[str, Any]]:
        """The definition to run and the execution-row fields that say where it came from."""
        given = [
            name
            for name, value in (
                ("workflow_id", workflow_id),
                ("definition", document),
                ("workflow_path", workflow_path),
            )
            if value
        ]
        if len(given) != 1:
            raise InvalidArgument.single(
                "source",
                "give exactly one of workflow_id, definition or workflow_path",
                reason="FIELD_INVALID",
            )
        if workflow_version and not workflow_id:
            raise InvalidArgument.single(
                "workflow_version", "is read only with workflow_id", reason="FIELD_INVALID"
            )
        if workflow_id:
            row, definition = await self.workflows.definition(workspace_id, workflow_id, workflow_version)
            if row.status == "cancelled":
                raise FailedPrecondition(
                    f"workflow {workflow_id!r} is cancelled and takes no new runs",
                    reason="WORKFLOW_CANCELLED",
                )
            return definition, {
                "workflow_id": workflow_id,
                "workflow_version": row.version,
                "document": None,
            }
        if document is not None:
            definition = self.store.parse(document)
            return definition, {"document": dumps(definition.document)}
        path = resolve_under_roots(workflow_path, self.workflows_dirs, field="workflow_path", expect="file")
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument.single(
                "workflow_path",
                f"{workflow_path!r} cannot be read as a UTF-8 workflow file: {exc.__class__.__name__}",
                reason="WORKFLOW_PATH_INVALID",
            ) from None
        definition = self.store.parse(load_document(text, filename=path.name))
        return definition, {"document": dumps(definition.document), "source_path": str(path)}

    async def start_execution(self, request: StartRequest) -> ExecutionView:
        """Create a run and start driving it; answers its row (basic view) once its creation is committed.
        With `queued` (why: "batch", ...) the run waits as queued until released with release_queued."""
        if not request.request_id:
            return await self._create_run(request)
        key = (request.workspace_id, request.request_id)
        pending = self._starting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        existing = await self.queries.execution_by_request(request.workspace_id, request.request_id)
        if existing is not None:
            return await self.queries.execution(request.workspace_id, existing, full=False)
        future: asyncio.Future[ExecutionView] = asyncio.get_running_loop().create_future()
        self._starting[key] = future
        try:
            started = await self._create_run(request)
        except WriteError:
            # Another process committed the same request id first.
            existing = await self.queries.execution_by_request(request.workspace_id, request.request_id)
            if existing is None:
                raise
            started = await self.queries.execution(request.workspace_id, existing, full=False)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent waiters get it, nobody else must
            raise
        finally:
            self._starting.pop(key, None)
        future.set_result(started)
        return started

    async def _create_run(self, request: StartRequest) -> ExecutionView:
        workspace_id, batch_id, parent, queued = (
            request.workspace_id,
            request.batch_id,
            request.parent,
            request.queued,
        )
        payload = self.checked_input(request.input)
        definition, source = await self._resolve_source(
            workspace_id,
            request.workflow_id,
            request.document,
            request.workflow_path,
            request.workflow_version,
        )
        stamp = now()
        if queued is None and self.workflow_holds.is_paused(source.get("workflow_id")):
            queued = WORKFLOW_PAUSED  # runs started while their workflow is paused stay queued
        run = Run(
            id=new_id("exec"),
            workspace_id=workspace_id,
            definition=definition,
            input=payload,
            name=definition.name,
            workflow_id=source.get("workflow_id"),
            workflow_version=source.get("workflow_version"),
            batch_id=batch_id,
            status=QUEUED if queued else RUNNING,
            hold=queued,
            parked=bool(queued),
            trace_logs=request.trace_logs,
            breakpoints_disabled=request.disable_breakpoints,
            created_at=stamp,
            started_at=None if queued else stamp,
            source_path=source.get("source_path"),
            parent_execution_id=parent[0] if parent else None,
            parent_node_key=parent[1] if parent else None,
            # A run of a batch gets a trace of its own, linked to the call that started the batch.
            trace_parent=tracing.new_run_traceparent(own_trace=batch_id is not None),
        )
        if queued:
            run.emit("EXECUTION_QUEUED", input=payload, name=run.name, reason=queued)
        else:
            run.emit("EXECUTION_STARTED", input=payload, name=run.name)
        run.lease_epoch = 0 if queued else 1
        insert = self.store.insert_run(
            run,
            document=source["document"],
            request_id=request.request_id or None,
            owner=None if queued else self.replica_id,
        )
        events = await self.writer.commit(insert)
        if not queued:
            self.scheduler.launch(run, fresh=True)
        # The reply comes from what was just committed: no read back.
        row = record(RunRecord, insert.statements[0][1])
        unreached = len(definition.document.get("nodes", []))  # no node has run yet
        return ExecutionView(
            row=row,
            last_sequence=max((e.sequence for e in events), default=0),
            tally=NodeTally({}, unreached),
        )

    # -- sub-workflows -----------------------------------------------------------------------------

    def _on_child_start(self, run: Run, record: NodeRecord, child: dict[str, Any]) -> None:
        self.in_background(self._start_child(run, record.key, record.attempts, child))

    async def _start_child(self, run: Run, node_key: str, attempt: int, child: dict[str, Any]) -> None:
        try:
            started = await self.start_execution(
                StartRequest(
                    workspace_id=run.workspace_id,
                    workflow_id=str(child.get("workflowId") or ""),
                    workflow_path=str(child.get("workflowPath") or ""),
                    input=child.get("input")
                    if isinstance(child.get("input"), dict)
                    else {"value": child.get("input")},
                    # One child per parent node attempt, even when a restart runs the node again.
                    request_id=f"child:{run.id}/{node_key}/{attempt}",
                    trace_logs=run.trace_logs,
                    parent=(run.id, node_key) if child.get("waitForCompletion", True) else None,
                )
            )
        except RunctlError as exc:
            failure = NodeFailure(
                f"could not start the sub-workflow: {exc.message}", code=exc.reason, retryable=False
            )
            self.scheduler.deliver(run.id, ChildFailed(node_key=node_key, error=failure))
            return
        if not child.get("waitForCompletion", True):
            self.scheduler.deliver(
                run.id, ChildCompleted(node_key=node_key, output={"executionId": started.row.id})
            )
        elif started.row.status in FINISHED_EXECUTION:
            # Found on recovery: the child ended while its parent was not listening.
            await self._report_finished_child(run.id, node_key, started.row)

    async def _report_finished_child(self, parent_id: str, node_key: str, row: RunRecord) -> None:
        if row.status == COMPLETED:
            ends = await executions.end_outputs(self.reader, row.id)
            outputs = [json.loads(end) if end else None for end in ends]
            result = outputs[0] if len(outputs) == 1 else (outputs or None)
            message: ChildCompleted | ChildFailed = ChildCompleted(
                node_key=node_key, output={"executionId": row.id, "output": result}
            )
        else:
            error = json.loads(row.error) if row.error else {}
            reason = error.get("message") or row.status
            failure = NodeFailure(f"sub-workflow {row.id} ended {row.status}: {reason}", code="CHILD_FAILED")
            message = ChildFailed(node_key=node_key, error=failure)
        self.scheduler.deliver(parent_id, message)

    def _notify_parent(self, run: Run) -> None:
        if not run.parent_execution_id or not run.parent_node_key:
            return
        if run.status == COMPLETED:
            output = {"executionId": run.id, "output": run.output}
            message: ChildCompleted | ChildFailed = ChildCompleted(
                node_key=run.parent_node_key, output=output
            )
        else:
            reason = (run.error or {}).get("message") or run.status
            failure = NodeFailure(f"sub-workflow {run.id} ended {run.status}: {reason}", code="CHILD_FAILED")
            message = ChildFailed(node_key=run.parent_node_key, error=failure)
        self.scheduler.deliver(run.parent_execution_id, message)


def parse_json_object(text: str, field: str) -> dict[str, Any]:
    """Parse a JSON object given as text (CLI and HTTP inputs), with a field violation when it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument.single(
            field, f"is not valid JSON: {exc.msg} at line {exc.lineno}", reason="FIELD_INVALID"
        ) from None
    if not isinstance(value, dict):
        raise InvalidArgument.single(field, "must be a JSON object", reason="FIELD_INVALID")
    return value
