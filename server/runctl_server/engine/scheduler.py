"""The scheduler: drives runs through their graphs, durably.

Each loaded run has one driver task, the only code that changes it. A driver advances the run as far as
the graph allows (quick nodes run inline, I/O nodes get a task of their own), commits every change and
its events through the group-commit writer, and only then starts side effects. A run with nothing to do
in-process (waiting on timers, pause points, workers or children) is unloaded: it is rows, not memory.
Anything that concerns an unloaded run (a timer, a resume, a worker's result) is delivered as a message,
which loads the run and drives it again.

With several replicas on one database (a `Router` is set), a run is driven only by the replica that
holds its lease: loading a run first claims it, every commit is fenced by the lease's epoch, and a
message for a run that another live replica drives is written to the run inbox for that replica. A
parked run holds no lease, so whichever replica next has something for it takes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runctl_server.engine import transitions as t
from runctl_server.engine.context import NodeRunContext, Scope
from runctl_server.engine.keys import frame
from runctl_server.engine.message_json import reply_to_json
from runctl_server.engine.messages import (
    ChildCompleted,
    ChildFailed,
    Command,
    Message,
    NodeMessage,
    NodeWorkDone,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    Wake,
)
from runctl_server.engine.model import (
    COMPLETED,
    ERROR,
    IDLE,
    PAUSED,
    QUEUED,
    RUNNING,
    SCHEDULED,
    SKIPPED,
    WAITING,
    WORKFLOW_PAUSED,
    NodeRecord,
    Run,
    now,
)
from runctl_server.engine.persistence import RunStore
from runctl_server.engine.timers import TimerService
from runctl_server.errors import RunctlError, Unavailable
from runctl_server.nodes.base import (
    ChildRun,
    NodeFailure,
    NodeResult,
    NodeType,
    PausePoint,
    WaitUntil,
    WorkerTask,
)
from runctl_server.nodes.spec import NodeSpec
from runctl_server.observe import tracing
from runctl_server.observe.calls import bind_run
from runctl_server.observe.metrics import Metrics
from runctl_server.store.leases import Claim, mark_handled, notify_new_task, notify_reply, release_run
from runctl_server.store.writer import LeaseLost, dumps

log = logging.getLogger(__name__)

# Pauses before claiming again a run that is active but held by nobody alive at the moment of looking.
CLAIM_RETRY_SECONDS = (0.01, 0.05, 0.2, 0.5)


class Router:
    """How a scheduler shares runs with other replicas (engine/cluster.py); absent on SQLite."""

    replica_id: str

    async def claim(self, execution_id: str) -> Claim:
        raise NotImplementedError

    def forward(self, execution_id: str, owner: str, message: Message) -> None:
        raise NotImplementedError

    async def inbox(self, execution_id: str) -> list[Message]:
        raise NotImplementedError

    def answer_gone(self, message: Message) -> None:
        raise NotImplementedError

    def nudge(self, execution_id: str, owner: str) -> None:
        raise NotImplementedError


@dataclass
class Driven:
    """A loaded run and what its driver tracks only in memory."""

    run: Run
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    worklist: deque[tuple[Scope, str]] = field(default_factory=deque)
    inflight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)
    spawn: list[tuple[str, Scope, NodeSpec, NodeType, NodeRunContext]] = field(default_factory=list)
    # Ready nodes not started because the run is held (operator pause or its workflow paused).
    held: list[tuple[Scope, str]] = field(default_factory=list)
    after_commit: list[Any] = field(default_factory=list)
    # Callers waiting for a control handler's commit: failed, not left hanging, if the driver dies.
    replies: list[asyncio.Future[Any]] = field(default_factory=list)
    # Messages handled since the last commit: if that commit is refused (the lease moved), they go to
    # the run's new driver instead of being lost.
    unsettled: list[Message] = field(default_factory=list)
    seen_inbox: set[int] = field(default_factory=set)
    lost: bool = False


def _lets_through(record: NodeRecord) -> bool:
    """A completed node takes its edges; so does one an operator skipped to let the run go on."""
    return record.status == COMPLETED or (
        record.status == SKIPPED and bool((record.state or {}).get("skippedByOperator"))
    )


def _elapsed_ms(record: NodeRecord) -> float:
    return round((now() - (record.started_at or now())) * 1000, 1)


def _resolved(ctx: NodeRunContext, config: Mapping[str, Any]) -> Any:
    """The node's config with its templates filled in, as the node sees it (raw if it cannot render)."""
    try:
        return ctx.render(dict(config))
    except Exception:
        return dict(config)


class Scheduler:
    """Loads, drives and unloads runs. Owned by the Engine; see engine/engine.py for the public face."""

    def __init__(
        self,
        store: RunStore,
        node_types: Mapping[str, NodeType],
        task_type: NodeType,
        services: dict[str, Any],
        # The handlers take RunSteering (engine/commands.py), which this class provides; commands.py
        # names this module's Driven, so this one does not import it back (no import cycle).
        commands: Mapping[str, Callable[[Scheduler, Driven, dict[str, Any]], Any]],
    ) -> None:
        self.store = store
        # The driver commands by name (engine/commands.py), run inside a run's driver.
        self._commands = commands
        self.node_types = node_types
        self.task_type = task_type
        self.services = services
        self.timers = TimerService(self.store, self._timer_due)
        self._loaded: dict[str, Driven] = {}
        self._loading: dict[str, asyncio.Future[Driven | str | None]] = {}
        self.router: Router | None = None
        self.claims = 0
        self.forwarded = 0
        self.leases_lost = 0
        self._drivers: set[asyncio.Task[None]] = set()
        self.transitions = 0
        self.on_run_finished: list[Any] = []
        self.on_task_created: list[Any] = []
        self.on_child_start: Any = None
        # Answers whether a workflow is paused: its runs then start no new node (the workflow pause API).
        self.workflow_paused: Callable[[str | None], bool] = lambda _workflow_id: False
        # Answers whether a workflow's pause is not committed yet: its runs start no node, but do not
        # show PAUSED before the WORKFLOW_PAUSED event that causes it is in the log.
        self.workflow_pause_pending: Callable[[str | None], bool] = lambda _workflow_id: False
        self._closing = False
        self.metrics: Metrics | None = None

    # -- entry points ------------------------------------------------------------------------------

    def launch(self, run: Run, fresh: bool = True) -> None:
        """Start driving a run that is already committed (fresh) or was just loaded."""
        driven = Driven(run)
        top = Scope(run.definition.graph)
        driven.scopes[""] = top
        if fresh:
            for node_id in run.definition.graph.entry_ids:
                driven.worklist.append((top, node_id))
        else:
            self._seed_loaded(driven)
            for record in run.nodes.values():
                if record.wake_at is not None:
                    self.timers.schedule(record.wake_at, run.id, record.key)
        self._loaded[run.id] = driven
        task = asyncio.create_task(self._drive(driven), name=f"run-{run.id}")
        self._drivers.add(task)
        task.add_done_callback(self._drivers.discard)

    def _timer_due(self, execution_id: str, node_key: str, wake_at: float) -> None:
        self.deliver(execution_id, TimerFired(node_key=node_key, wake_at=wake_at))

    def deliver(self, execution_id: str, message: Message) -> None:
        """Hand a message to a run, loading it from the database if it is not in memory (or, with
        replicas, sending it to the replica that drives the run)."""
        if self._closing:
            if message.reply is not None and not message.reply.done():
                message.reply.set_exception(
                    Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
                )
            return
        driven = self._loaded.get(execution_id)
        if driven is not None:
            driven.inbox.put_nowait(message)
            return
        task = asyncio.create_task(self._load_and_deliver(execution_id, message))
        self._drivers.add(task)
        task.add_done_callback(self._drivers.discard)

    async def _load_and_deliver(self, execution_id: str, message: Message) -> None:
        # Another load may have launched a driver since this task was created: reading the run now
        # could see rows that driver is about to change, and launch a second driver on a stale copy.
        loaded = self._loaded.get(execution_id)
        if loaded is not None:
            loaded.inbox.put_nowait(message)
            return
        pending = self._loading.get(execution_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[execution_id] = pending
            try:
                pending.set_result(await self._claim_and_load(execution_id))
            except Exception as exc:
                log.exception("could not load run %s", execution_id)
                pending.set_exception(exc)
            finally:
                self._loading.pop(execution_id, None)
        try:
            located = await asyncio.shield(pending)
        except Exception as exc:
            if message.reply is not None and not message.reply.done():
                known = isinstance(exc, RunctlError)
                message.reply.set_exception(
                    exc if known else RunctlError("could not load the run", reason="INTERNAL")
                )
            return
        target = self._loaded.get(execution_id) or located
        if isinstance(target, str):  # another live replica drives it
            assert self.router is not None
            if isinstance(message, Wake):
                self.router.nudge(execution_id, target)  # it may have missed the inbox notification
                return
            if message.local_only:
                return  # the owner has its own timers, and runs its interrupted nodes itself
            self.forwarded += 1
            self.router.forward(execution_id, target, message)
            return
        if target is None:
            if message.inbox_id is not None and self.router is not None:
                self.router.answer_gone(message)
            if message.reply is not None and not message.reply.done():
                message.reply.set_result(None)
            return
        if target.run.id in self._loaded:
            self._put(target, message)
        else:  # it finished and unloaded meanwhile: load again
            self.deliver(execution_id, message)

    async def _claim_and_load(self, execution_id: str) -> Driven | str | None:
        """Load the run and start driving it: the Driven; or the id of the live replica that drives
        it; or None when it has ended or does not exist."""
        claim = Claim(0)
        if self.router is not None:
            claim = await self.router.claim(execution_id)
            for delay in CLAIM_RETRY_SECONDS:
                # Active with no live owner: the owner let it go, or its lease lapsed, between the
                # claim and the look at its row. Claim again rather than take the run for ended.
                if claim.epoch is not None or not claim.active or claim.owner:
                    break
                await asyncio.sleep(delay)
                claim = await self.router.claim(execution_id)
            if claim.epoch is None:
                if claim.active and not claim.owner:
                    raise Unavailable(
                        f"run {execution_id} could not be claimed; try again", reason="EXECUTION_NOT_CLAIMED"
                    )
                return claim.owner if claim.active else None
            self.claims += 1
        if execution_id in self._loaded:
            return self._loaded[execution_id]
        return await self._launch_claimed(execution_id, claim.epoch or 0)

    async def _launch_claimed(self, execution_id: str, epoch: int) -> Driven | None:
        """Load a run this process holds the lease of (epoch), drive it, and hand it what waits in its
        inbox; None when it has ended, does not exist or is already driven here."""
        run = await self.store.load_run(execution_id)
        if run is None or run.finished or execution_id in self._loaded:
            return None
        run.lease_epoch = epoch
        self.launch(run, fresh=False)
        driven = self._loaded[execution_id]
        if self.router is not None:
            for message in await self.router.inbox(execution_id):
                self._put(driven, message)
        return driven

    def _put(self, driven: Driven, message: Message) -> None:
        if message.inbox_id is not None:
            if message.inbox_id in driven.seen_inbox:
                return
            driven.seen_inbox.add(message.inbox_id)
        driven.inbox.put_nowait(message)

    async def take(self, execution_id: str, epoch: int) -> bool:
        """Drive a run this replica has just claimed (taken over from a dead replica)."""
        if execution_id in self._loaded:
            return False
        return await self._launch_claimed(execution_id, epoch) is not None

    def deliver_inbox(self, execution_id: str, messages: list[Message]) -> bool:
        """Messages read from the run inbox, for a run driven here; False when it is not loaded."""
        driven = self._loaded.get(execution_id)
        if driven is None:
            return False
        for message in messages:
            self._put(driven, message)
        return True

    @property
    def loaded_ids(self) -> list[str]:
        return list(self._loaded)

    def is_loaded(self, execution_id: str) -> bool:
        return execution_id in self._loaded

    async def close(self) -> None:
        """Stop driving; in-flight node work is abandoned and resumes after the next start."""
        self._closing = True
        await self.timers.stop()
        for task in list(self._drivers):
            task.cancel()
        for driven in self._loaded.values():
            for task in driven.inflight.values():
                task.cancel()
        await asyncio.gather(*self._drivers, return_exceptions=True)

    # -- the driver --------------------------------------------------------------------------------

    async def _drive(self, driven: Driven) -> None:
        run = driven.run
        bind_run(run.id, run.workflow_id, run.workspace_id)  # log lines of this driver name the run
        try:
            while True:
                await self._advance(driven)
                await self._commit(driven)
                self._spawn_io(driven)
                if run.finished:
                    self._cancel_inflight(driven)
                    break
                idle = not driven.worklist or run.status == QUEUED
                if not driven.inflight and idle and driven.inbox.empty():
                    if not run.parked_committed:
                        run.parked = True
                        run.row_dirty = True
                        if self.router is not None:
                            # Parked runs hold no lease: whoever next has something for it takes it.
                            run.statements.append(release_run(run.id))
                        await self._commit(driven)
                    if driven.inbox.empty() or self.router is not None:
                        break  # with replicas, messages that raced the release go through a new claim
                message = await driven.inbox.get()
                self._handle(driven, message)
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            self.leases_lost += 1
            log.info("run %s is driven by another replica now; this replica lets it go", run.id)
            self._cancel_inflight(driven)
            # What this driver took in but could not commit goes to the new driver, replies and all.
            if self._loaded.get(run.id) is driven:
                del self._loaded[run.id]
            for message in driven.unsettled:
                if message.inbox_id is None and not message.local_only:
                    self.deliver(run.id, message)
            driven.unsettled.clear()
        except Exception:
            log.exception("driver of run %s crashed; it will be recovered on restart", run.id)
            for reply in driven.replies:
                if not reply.done():
                    reply.set_exception(
                        RunctlError("the run could not be changed: its driver failed", reason="INTERNAL")
                    )
        finally:
            if self._loaded.get(run.id) is driven:
                del self._loaded[run.id]
            # Messages that raced the unload go to a fresh load. Those read from the run inbox are still
            # pending there: a nudge makes whoever drives the run next read them again.
            nudge = False
            while not driven.inbox.empty():
                message = driven.inbox.get_nowait()
                if message.inbox_id is None:
                    self.deliver(run.id, message)
                else:
                    nudge = True
            if nudge:
                self.deliver(run.id, Wake())
        if run.finished and not driven.lost:
            for callback in self.on_run_finished:
                callback(run)

    async def _commit(self, driven: Driven) -> None:
        run = driven.run
        mutation = self.store.mutation_for(run)
        if not mutation and not driven.after_commit:
            driven.unsettled.clear()
            return
        if self.router is not None:
            mutation.fence = (run.id, run.lease_epoch)
        if run.parked:
            run.parked_committed = True
        self.transitions += len(mutation.events)
        try:
            await self.store.writer.commit(mutation)
        except LeaseLost:
            driven.lost = True
            raise
        for action in driven.after_commit:
            action()
        driven.after_commit.clear()
        driven.replies.clear()
        driven.unsettled.clear()

    def _spawn_io(self, driven: Driven) -> None:
        for key, _scope, node, node_type, ctx in driven.spawn:
            driven.inflight[key] = asyncio.create_task(self._run_io(driven, key, node, node_type, ctx))
        driven.spawn.clear()

    async def _run_io(
        self, driven: Driven, key: str, node: NodeSpec, node_type: NodeType, ctx: NodeRunContext
    ) -> None:
        try:
            result = await self._execute(node, node_type, ctx)
            driven.inbox.put_nowait(NodeWorkDone(node_key=key, result=result, logs=tuple(ctx.logs)))
        except NodeFailure as failure:
            driven.inbox.put_nowait(NodeWorkDone(node_key=key, error=failure, logs=tuple(ctx.logs)))

    async def _execute(self, node: NodeSpec, node_type: NodeType, ctx: NodeRunContext) -> NodeResult:
        metrics = self.metrics
        if metrics is None and not tracing.active():
            return await self._run_node(node, node_type, ctx)
        started = time.perf_counter()
        outcome = "failed"
        attributes = {
            "runctl.node.id": node.id,
            "runctl.node.type": node.type,
            "runctl.execution.id": ctx.run.id,
        }
        with tracing.run_span(f"runctl.node {node.type}", ctx.run.trace_parent, attributes) as span:
            try:
                result = await self._run_node(node, node_type, ctx)
                outcome = "completed" if result.suspend is None else "suspended"
                return result
            except NodeFailure as failure:
                tracing.failed(span, failure.message)
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                if metrics is not None:
                    metrics.node_executed(node.type, outcome, time.perf_counter() - started)

    async def _run_node(self, node: NodeSpec, node_type: NodeType, ctx: NodeRunContext) -> NodeResult:
        try:
            if node.timeout_seconds:
                return await asyncio.wait_for(node_type.execute(ctx), node.timeout_seconds)
            return await node_type.execute(ctx)
        except NodeFailure:
            raise
        except TimeoutError:
            raise NodeFailure(f"node timed out after {node.timeout_seconds:g}s", code="TIMEOUT") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise NodeFailure(str(exc) or type(exc).__name__, code=type(exc).__name__) from exc

    def _cancel_inflight(self, driven: Driven) -> None:
        for task in driven.inflight.values():
            task.cancel()
        driven.inflight.clear()

    # -- advancing the graph -----------------------------------------------------------------------

    def hold_of(self, run: Run) -> str | None:
        """Why the run may start no new node now, if it may not."""
        if run.hold:
            return run.hold
        if run.workflow_id and self.workflow_paused(run.workflow_id):
            return WORKFLOW_PAUSED
        return None

    async def _advance(self, driven: Driven) -> None:
        run = driven.run
        if run.status == QUEUED:
            return  # a queued run waits for its release (a batch slot, its workflow's resume)
        hold = self.hold_of(run)
        while driven.worklist and not run.finished:
            scope, node_id = driven.worklist.popleft()
            node = scope.graph.by_id[node_id]
            key = scope.prefix + node_id
            record = run.nodes.get(key)
            if record is not None and record.status not in (IDLE, SCHEDULED):
                continue
            if record is None or record.status == IDLE:
                verdict = self._readiness(run, scope, node)
                if verdict is None:
                    continue
                if verdict is False:
                    record = run.node(key, node.id, node.type, scope.stack)
                    t.skip_node(run, record)
                    self._after_done(driven, scope, node, record)
                    continue
            if hold is not None:
                driven.held.append((scope, node_id))
                continue
            await self._start_node(driven, scope, node, key)
        if not run.finished:
            self._check_finished(driven)

    @staticmethod
    def _readiness(run: Run, scope: Scope, node: NodeSpec) -> bool | None:
        """None: not ready yet; True: run it; False: no incoming branch was taken, skip it."""
        incoming = scope.graph.incoming.get(node.id, ())
        if not incoming:
            return True
        taken = False
        for edge in incoming:
            source = run.nodes.get(scope.prefix + edge.source)
            if source is None or not source.done:
                return None
            if _lets_through(source) and (edge.when or "") in (
                source.branches if source.branches is not None else ("",)
            ):
                taken = True
        return taken

    async def _start_node(self, driven: Driven, scope: Scope, node: NodeSpec, key: str) -> None:
        run = driven.run
        record = run.node(key, node.id, node.type, scope.stack)
        state = record.state or {}
        wants_break = node.breakpoint or node.type == "breakpoint"
        if wants_break and not run.breakpoints_disabled and not state.get("breakpointPassed"):
            t.pause_at_breakpoint(run, record, workflow_id=run.workflow_id)
            return
        t.start_node(run, record)
        if node.body is not None:
            self._start_loop(driven, scope, node, record)
            return
        node_type = self.node_types.get(node.type, self.task_type)
        ctx = NodeRunContext(run, scope, node, key, record.attempts, self.services)
        if run.trace_logs:
            ctx.log(
                f"{node.type} node {node.id!r} started (attempt {record.attempts})",
                level="debug",
                input=_resolved(ctx, node.config),
            )
        if not node_type.inline:
            driven.spawn.append((key, scope, node, node_type, ctx))
            return
        try:
            result = await self._execute(node, node_type, ctx)
        except NodeFailure as failure:
            self._keep_logs(run, record, node, ctx.logs)
            self._fail_or_retry(driven, scope, node, record, failure)
            return
        self._keep_logs(run, record, node, ctx.logs)
        self._apply_result(driven, scope, node, record, result)

    @staticmethod
    def _keep_logs(run: Run, record: NodeRecord, node: NodeSpec, logs: list[dict[str, Any]]) -> None:
        if logs and (run.trace_logs or node.type == "log"):
            for line in logs:
                t.log_line(run, record, line)

    @staticmethod
    def _trace(run: Run, record: NodeRecord, message: str, **details: Any) -> None:
        """With trace logs on, the engine itself records what each node did and how long it took."""
        if run.trace_logs:
            t.log_line(run, record, {"time": now(), "level": "debug", "message": message, "details": details})

    def _apply_result(
        self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord, result: NodeResult
    ) -> None:
        run = driven.run
        suspend = result.suspend
        if suspend is None:
            self._trace(
                run,
                record,
                f"completed in {_elapsed_ms(record)} ms",
                output=result.output,
                elapsedMs=_elapsed_ms(record),
            )
            t.complete_node(run, record, result.output, result.branches)
            if not scope.prefix:
                run.outputs[node.id] = {"output": result.output}
            else:
                scope.outputs[node.id] = {"output": result.output}
            self._after_done(driven, scope, node, record)
            return
        match suspend:
            case WaitUntil(wake_at=when):
                wake_at = when.timestamp()
                t.wait_node(run, record, wake_at=wake_at)
                driven.after_commit.append(lambda: self.timers.schedule(wake_at, run.id, record.key))
            case PausePoint(pause=pause):
                t.pause_node(run, record, dict(pause), workflow_id=run.workflow_id)
                if record.wake_at is not None:
                    expires = record.wake_at
                    driven.after_commit.append(lambda: self.timers.schedule(expires, run.id, record.key))
            case WorkerTask(task=spec):
                self._hand_out_task(driven, node, record, spec)
            case ChildRun(child=spec):
                child = dict(spec)
                t.wait_child(run, record, child)
                if self.on_child_start is not None:
                    driven.after_commit.append(lambda: self.on_child_start(run, record, child))

    def _hand_out_task(
        self, driven: Driven, node: NodeSpec, record: NodeRecord, spec: Mapping[str, Any]
    ) -> None:
        run = driven.run
        task = t.create_task(run, record, dict(spec), node)
        if node.timeout_seconds:
            deadline = now() + node.timeout_seconds
            record.wake_at = deadline
            driven.after_commit.append(lambda: self.timers.schedule(deadline, run.id, record.key))
        driven.after_commit.append(lambda: [cb(task) for cb in self.on_task_created])
        if self.router is not None:
            # Workers polling other replicas hear of it when this commits.
            run.statements.append(notify_new_task(task["workspace_id"], task["queue"]))

    def _fail_or_retry(
        self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord, failure: NodeFailure
    ) -> None:
        run = driven.run
        self._trace(
            run, record, f"failed after {_elapsed_ms(record)} ms: {failure.message}", code=failure.code
        )
        policy = node.retry
        if failure.retryable and record.attempts < policy.max_attempts:
            delay = min(
                policy.backoff_seconds * policy.backoff_multiplier ** (record.attempts - 1),
                policy.max_backoff_seconds,
            )
            t.retry_node(run, record, failure.message, failure.code, wake_at=now() + delay)
            if delay <= 0:
                driven.worklist.append((scope, node.id))
            else:
                wake_at = record.wake_at
                assert wake_at is not None
                driven.after_commit.append(lambda: self.timers.schedule(wake_at, run.id, record.key))
            return
        t.fail_node(run, record, failure.message, failure.code)
        self._fail_run(driven, record, failure)

    def _fail_run(self, driven: Driven, record: NodeRecord, failure: NodeFailure) -> None:
        run = driven.run
        self._cancel_inflight(driven)
        t.stop_open_nodes(run)
        t.finish_run(
            run, ERROR, error={"message": failure.message, "nodeId": record.node_id, "code": failure.code}
        )

    def _after_done(self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord) -> None:
        for edge in scope.graph.outgoing.get(node.id, ()):
            driven.worklist.append((scope, edge.target))
        if scope.loop_key is not None and all(
            (done := driven.run.nodes.get(scope.prefix + n.id)) is not None and done.done
            for n in scope.graph.nodes
        ):
            self._finish_iteration(driven, scope)

    # -- loops -------------------------------------------------------------------------------------

    def _start_loop(self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord) -> None:
        run = driven.run
        ctx = NodeRunContext(run, scope, node, record.key, record.attempts, self.services)
        try:
            items = ctx.evaluate(str(node.config["items"]))
        except Exception as exc:
            self._fail_or_retry(driven, scope, node, record, NodeFailure(f"items: {exc}", code="BAD_ITEMS"))
            return
        if not isinstance(items, list):
            failure = NodeFailure(
                f"items must evaluate to an array, got {type(items).__name__}",
                code="BAD_ITEMS",
                retryable=False,
            )
            self._fail_or_retry(driven, scope, node, record, failure)
            return
        record.state = {"items": items, "next": 0, "active": [], "results": [None] * len(items)}
        run.touch(record)
        self._fill_iterations(driven, scope, node, record)

    def _fill_iterations(self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord) -> None:
        state = record.state or {}
        items = state["items"]
        concurrency = int(node.config.get("concurrency", 1) or 1)
        while len(state["active"]) < concurrency and state["next"] < len(items):
            index = state["next"]
            state["next"] = index + 1
            state["active"].append(index)
            body = self._iteration_scope(driven, scope, node, index, items)
            for entry in body.graph.entry_ids:
                driven.worklist.append((body, entry))
        driven.run.touch(record)
        if not state["active"] and state["next"] >= len(items):
            results = state["results"]
            t.complete_node(driven.run, record, results, None)
            if not scope.prefix:
                driven.run.outputs[node.id] = {"output": results}
            else:
                scope.outputs[node.id] = {"output": results}
            self._after_done(driven, scope, node, record)

    def _iteration_scope(
        self, driven: Driven, scope: Scope, node: NodeSpec, index: int, items: list[Any]
    ) -> Scope:
        prefix = f"{scope.prefix}{node.id}[{index}]."
        existing = driven.scopes.get(prefix)
        if existing is not None:
            return existing
        assert node.body is not None
        body = Scope(
            graph=node.body,
            prefix=prefix,
            stack=[*scope.stack, frame(node.id, index, len(items))],
            item=items[index] if index < len(items) else None,
            loop_key=scope.prefix + node.id,
            parent=scope,
        )
        for body_node in node.body.nodes:
            done = driven.run.nodes.get(prefix + body_node.id)
            if done is not None and done.status == COMPLETED:
                body.outputs[body_node.id] = {"output": done.output}
        driven.scopes[prefix] = body
        return body

    def _finish_iteration(self, driven: Driven, body: Scope) -> None:
        run = driven.run
        assert body.loop_key is not None and body.parent is not None
        loop_record = run.nodes[body.loop_key]
        state = loop_record.state or {}
        index = body.index
        if loop_record.status != RUNNING or index not in state.get("active", []):
            return
        sinks = [n.id for n in body.graph.nodes if not body.graph.outgoing.get(n.id)]
        outputs = {
            sink: run.nodes[body.prefix + sink].output
            for sink in sinks
            if run.nodes[body.prefix + sink].status == COMPLETED
        }
        state["results"][index] = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        state["active"].remove(index)
        loop_node = body.parent.graph.by_id[loop_record.node_id]
        self._fill_iterations(driven, body.parent, loop_node, loop_record)

    # -- finishing ---------------------------------------------------------------------------------

    def _check_finished(self, driven: Driven) -> None:
        run = driven.run
        graph = run.definition.graph
        records = [run.nodes.get(node.id) for node in graph.nodes]
        if all(record is not None and record.done for record in records):
            outputs = {
                node.id: run.nodes[node.id].output
                for node in graph.nodes
                if node.type == "end" and run.nodes[node.id].status == COMPLETED
            }
            t.finish_run(
                run, COMPLETED, output=next(iter(outputs.values())) if len(outputs) == 1 else outputs or None
            )
            return
        paused = any(r.status == WAITING and (r.state or {}).get("contextId") for r in run.nodes.values())
        hold = self.hold_of(run)
        if hold == WORKFLOW_PAUSED and self.workflow_pause_pending(run.workflow_id):
            hold = None  # shown once the pause commits (WorkflowControl.pause refreshes the run)
        if not paused and hold is not None and not driven.inflight:
            # In-flight nodes have finished and nothing new may start: the run is paused by its hold.
            t.hold_run(run, hold, driven.held[0][1] if driven.held else run.current_node_id)
            return
        t.set_run_status(run, PAUSED if paused else RUNNING)

    # -- control: called by handlers that run inside the driver (see engine/control.py) ----------

    def located(self, driven: Driven, record: NodeRecord) -> tuple[Scope, NodeSpec]:
        scope = self._scope_of(driven, record)
        return scope, scope.graph.by_id[record.node_id]

    def _go_on(self, driven: Driven) -> None:
        """A paused run with no open pause point and no hold left is running again."""
        run = driven.run
        if run.status != PAUSED or self.hold_of(run) is not None:
            return
        if not any(r.status == WAITING and (r.state or {}).get("contextId") for r in run.nodes.values()):
            t.set_run_status(run, RUNNING)

    def resume_waiting(self, driven: Driven, record: NodeRecord, output: Any, data: Any = None) -> None:
        """A waiting node's pause point is answered: it completes with `output` and the run goes on."""
        scope, node = self.located(driven, record)
        t.clear_wait(driven.run, record, data)
        record.status = RUNNING
        self._go_on(driven)
        self._apply_result(driven, scope, node, record, NodeResult(output=output))

    def pass_breakpoint(self, driven: Driven, record: NodeRecord) -> None:
        """Continue from a breakpoint: the node runs now, without pausing again."""
        scope, node = self.located(driven, record)
        t.resolve_pause(driven.run, record, "resumed")
        record.state = {**(record.state or {}), "breakpointPassed": True}
        record.status = IDLE
        self._go_on(driven)
        driven.worklist.append((scope, node.id))

    def skip_paused(self, driven: Driven, record: NodeRecord) -> None:
        """The paused node is marked skipped and the run goes on past it."""
        scope, node = self.located(driven, record)
        t.resolve_pause(driven.run, record, "cancelled")
        record.state = {**(record.state or {}), "skippedByOperator": True}
        t.skip_node(driven.run, record, reason="skipped by an operator")
        self._go_on(driven)
        if not scope.prefix:
            driven.run.outputs[node.id] = {"output": None}
        self._after_done(driven, scope, node, record)

    def stop_run(self, driven: Driven, reason: str) -> None:
        """End the run as stopped: in-flight node work is cancelled, open nodes stop."""
        self._cancel_inflight(driven)
        t.stop_open_nodes(driven.run)
        t.stop_run(driven.run, reason)

    def release(self, driven: Driven) -> None:
        """Lift what held the run (its queue slot, an operator's pause) and look at its graph again."""
        run = driven.run
        if run.status == QUEUED:
            t.start_queued(run)
        run.hold = None
        run.row_dirty = True
        self._go_on(driven)
        self.reseed(driven)

    def refresh(self, driven: Driven) -> None:
        """Look at every ready node again (a hold was lifted elsewhere, say its workflow resumed)."""
        self._go_on(driven)
        self.reseed(driven)

    # -- messages ----------------------------------------------------------------------------------

    def _handle(self, driven: Driven, message: Message) -> None:
        if not message.local_only:
            driven.unsettled.append(message)
        if isinstance(message, Command):
            self._run_command(driven, message)
            return
        if message.inbox_id is not None:
            self._answer(driven, message)
        if not isinstance(message, NodeMessage):
            return  # a Wake: loading the run was the point
        run = driven.run
        key = message.node_key
        record = run.nodes.get(key)
        if record is None or run.finished:
            return
        scope = self._scope_of(driven, record)
        node = scope.graph.by_id[record.node_id]
        match message:
            case NodeWorkDone(result=result, error=error, logs=logs):
                driven.inflight.pop(key, None)
                if record.status != RUNNING:
                    return
                self._keep_logs(run, record, node, list(logs))
                if error is not None:
                    self._fail_or_retry(driven, scope, node, record, error)
                elif result is not None:
                    self._apply_result(driven, scope, node, record, result)
            case TimerFired(wake_at=wake_at):
                self._on_timer(driven, scope, node, record, wake_at)
            case TaskCompleted(task_id=task_id, output=output):
                if (record.state or {}).get("taskId") == task_id:
                    self._resume_with(driven, scope, node, record, output)
            case ChildCompleted(output=output):
                self._resume_with(driven, scope, node, record, output)
            case TaskFailed(task_id=task_id, error=error):
                if record.status == RUNNING and (record.state or {}).get("taskId") == task_id:
                    t.clear_wait(run, record)
                    self._fail_or_retry(driven, scope, node, record, error)
            case ChildFailed(error=error):
                if record.status == RUNNING:
                    t.clear_wait(run, record)
                    self._fail_or_retry(driven, scope, node, record, error)

    def _run_command(self, driven: Driven, message: Command) -> None:
        run = driven.run
        with tracing.run_span(
            f"runctl.command {message.name}",
            run.trace_parent,
            {"runctl.execution.id": run.id, "runctl.command": message.name},
            link_to=message.traceparent,
        ) as span:
            try:
                handler = self._commands[message.name]
                result = handler(self, driven, dict(message.args))
            except Exception as exc:
                tracing.failed(span, str(exc))
                self._answer(driven, message, error=exc)
                return
        self._answer(driven, message, result=result)

    def _resume_with(
        self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord, output: Any
    ) -> None:
        """What the node waited on (its task, its sub-workflow run) completed with `output`."""
        if record.status not in (WAITING, RUNNING):
            return
        t.clear_wait(driven.run, record)
        if record.status == WAITING:
            record.status = RUNNING
        self._apply_result(driven, scope, node, record, NodeResult(output=output))

    def _answer(
        self, driven: Driven, message: Message, result: Any = None, error: BaseException | None = None
    ) -> None:
        """Answer the sender once the run's next commit is durable (with the lease still ours): the
        caller in this process through its future, another replica through the inbox row, which is
        marked answered in that same commit."""
        if message.inbox_id is not None:
            driven.run.statements.append(
                mark_handled(message.inbox_id, dumps(reply_to_json(result, error)), now())
            )
            driven.run.statements.append(notify_reply(message.inbox_sender, message.inbox_id))
        reply = message.reply
        if reply is None:
            return
        if error is not None and self.router is None:
            if not reply.done():
                reply.set_exception(error)  # one process: nothing to prove before answering
            return
        driven.replies.append(reply)

        def settle() -> None:
            if reply.done():
                return
            if error is not None:
                reply.set_exception(error)
            else:
                reply.set_result(result)

        driven.after_commit.append(settle)

    def _on_timer(
        self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord, wake_at: float
    ) -> None:
        run = driven.run
        if record.wake_at is None or abs(record.wake_at - wake_at) > 1e-6:
            return  # a stale timer: the node moved on
        record.wake_at = None
        run.touch(record)
        if record.status == SCHEDULED:
            driven.worklist.append((scope, node.id))
        elif record.status == WAITING and (record.state or {}).get("contextId"):
            t.expire_pause(run, record, node)
            self._apply_expiry(driven, scope, node, record)
        elif record.status == WAITING:
            t.resume_from_wait(run, record)
            self._apply_result(
                driven, scope, node, record, NodeResult(output=(record.state or {}).get("output"))
            )
        elif record.status == RUNNING and (record.state or {}).get("taskId"):
            t.cancel_task(run, record)
            failure = NodeFailure(f"task timed out after {node.timeout_seconds:g}s", code="TIMEOUT")
            self._fail_or_retry(driven, scope, node, record, failure)

    def _apply_expiry(self, driven: Driven, scope: Scope, node: NodeSpec, record: NodeRecord) -> None:
        on_timeout = str(node.config.get("onTimeout", "fail"))
        if on_timeout == "fail":
            failure = NodeFailure(f"{node.type} node {node.id!r} expired", code="EXPIRED", retryable=False)
            self._fail_or_retry(driven, scope, node, record, failure)
        elif on_timeout == "branch":
            self._apply_result(
                driven,
                scope,
                node,
                record,
                NodeResult(output={"expired": True}, branches=frozenset({"timeout"})),
            )
        else:
            self._apply_result(driven, scope, node, record, NodeResult(output={"expired": True}))

    # -- loading -----------------------------------------------------------------------------------

    def _scope_of(self, driven: Driven, record: NodeRecord) -> Scope:
        scope = driven.scopes[""]
        for level in record.stack:
            loop_id = str(level["parentNodeId"])
            loop_node = scope.graph.by_id[loop_id]
            loop_record = driven.run.nodes[scope.prefix + loop_id]
            items = (loop_record.state or {}).get("items", [])
            scope = self._iteration_scope(driven, scope, loop_node, int(level["index"]), items)
        return scope

    def reseed(self, driven: Driven) -> None:
        """Look again at every node not started yet (after a load, or when a hold is released)."""
        run = driven.run
        top = driven.scopes[""]
        driven.held.clear()
        for record in sorted(run.nodes.values(), key=lambda r: r.key.count("[")):
            if record.status in (IDLE, SCHEDULED) and record.wake_at is None:
                driven.worklist.append((self._scope_of(driven, record), record.node_id))
            elif record.status == RUNNING and "active" in (record.state or {}):
                node = run.definition.find(record.node_id)
                if node is not None and node.body is not None:
                    state = record.state or {}
                    scope = self._scope_of(driven, record)
                    for index in list(state.get("active", [])):
                        body = self._iteration_scope(driven, scope, node, index, state.get("items", []))
                        for body_node in body.graph.nodes:
                            driven.worklist.append((body, body_node.id))
        for node in top.graph.nodes:
            if node.id not in run.nodes:
                driven.worklist.append((top, node.id))

    def _seed_loaded(self, driven: Driven) -> None:
        """After a load: re-run nodes interrupted mid-flight, and look again at everything not started."""
        run = driven.run
        for record in sorted(run.nodes.values(), key=lambda r: r.key.count("[")):
            if (
                record.status == RUNNING
                and not (record.state or {}).get("taskId")
                and not (record.state or {}).get("childId")
            ):
                node = run.definition.find(record.node_id)
                if node is not None and node.body is not None:
                    continue  # reseed looks at its active iterations
                # At-least-once: an interrupted node runs again with the same idempotency key, as the
                # same attempt: a crash does not use up the node's retries.
                record.status = IDLE
                record.attempts = max(record.attempts - 1, 0)
                run.touch(record)
        self.reseed(driven)
        if run.parked:
            run.parked = False
            run.parked_committed = False
            run.row_dirty = True
