"""The task dispatcher: hands node attempts that external workers run (`task` nodes and every node type
that is not built in) to the workers polling their queues, and carries the workers' results back to runs.

The tasks table is the truth; this process keeps only ids in memory: per-queue deques of pending tasks,
the leases it granted, and the pollers waiting. A task is leased in the database before it is sent, and
every write is guarded by the state it expects, so a task goes to one worker at a time even when several
server processes share the database. A lease lives for the task's heartbeat timeout; a background sweeper
puts tasks whose worker went silent back to pending, and they are sent again (at-least-once, same
idempotency key). No gRPC in here: api/worker_service.py translates.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runctl_server.clock import SYSTEM_CLOCK, Clock
from runctl_server.engine.commands import RunSteering, command
from runctl_server.engine.messages import Command, Message, TaskCompleted, TaskFailed
from runctl_server.engine.model import FINISHED_EXECUTION, RUNNING, now
from runctl_server.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, Unavailable
from runctl_server.nodes.base import NodeFailure
from runctl_server.store import tasks as stored
from runctl_server.store.reads import Reader
from runctl_server.store.records import TaskRecord
from runctl_server.store.writer import Change, Mutation, Writer

if TYPE_CHECKING:
    from runctl_server.engine.scheduler import Driven

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 1000
MAX_QUEUES = 100
MAX_NAME = 200
SWEEP_SECONDS = 0.5
# How often to look in the database for tasks this process does not know of (another process's).
RESCAN_SECONDS = 5.0
RESCAN_LIMIT = 500
# How long a worker's result may wait for its run to take it before the call answers anyway.
SETTLE_SECONDS = 10.0

QueueKey = tuple[str, str]  # (workspace id, queue name)


@dataclass(frozen=True)
class DispatchedTask:
    """A task as leased to a worker: what the worker is sent."""

    id: str
    execution_id: str
    workflow_id: str
    node_id: str
    type: str
    queue: str
    config: dict[str, Any]
    input: Any
    stack: list[dict[str, Any]]
    attempt: int
    idempotency_key: str
    heartbeat_timeout: float
    # Epoch seconds when the node's own timeout fails the attempt; None = no limit.
    deadline: float | None


@dataclass(eq=False)
class _Poller:
    """One open PollTasks stream."""

    workspace_id: str
    worker_id: str
    keys: tuple[QueueKey, ...]
    max_in_flight: int
    in_flight: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Rotates which queue is served first, so one busy queue cannot starve the others of a stream.
    turn: int = 0


@dataclass(eq=False)
class _Lease:
    """A lease this process granted (or found in the database at start) and watches for expiry."""

    owner: str
    key: QueueKey
    expires_at: float
    poller: _Poller | None = None


def _stale_reason(row: TaskRecord) -> str | None:
    """Why the run no longer wants this task (run finished, node moved on), or None while it does."""
    if row.status == "cancelled":
        return "cancelled"
    if row.run_status in FINISHED_EXECUTION:
        return f"its run is {row.run_status}"
    state = json.loads(row.node_state) if row.node_state else {}
    if row.node_status != RUNNING or state.get("taskId") != row.id:
        return "its node no longer waits on it"
    return None


def _view(row: TaskRecord) -> DispatchedTask:
    payload = json.loads(row.payload)
    config = payload.get("config")
    return DispatchedTask(
        id=row.id,
        execution_id=row.execution_id,
        workflow_id=row.workflow_id or "",
        node_id=row.node_id,
        type=row.type,
        queue=row.queue,
        config=config if isinstance(config, dict) else {},
        input=payload.get("input"),
        stack=list(payload.get("stack") or []),
        attempt=int(row.attempt),
        idempotency_key=row.idempotency_key,
        heartbeat_timeout=float(row.heartbeat_timeout),
        # While the node waits on its task, its wake-up time is the deadline of its timeoutSeconds.
        deadline=row.node_wake_at,
    )


class TaskDispatcher:
    """Per-queue pending task ids, the pollers waiting for them, and the leases granted."""

    def __init__(
        self,
        deliver: Callable[[str, Message], None],
        writer: Writer,
        reader: Reader,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        # Hands a message to a run's driver (Scheduler.deliver): all the dispatcher asks of the scheduler.
        self._deliver = deliver
        self.writer = writer
        self.reader = reader
        # Lease times (in memory and in the rows' lease_expires_at) and the sweeper's pace: one clock,
        # so a test moves a lease past its expiry instead of waiting for it.
        self.clock = clock
        # Seconds without a task after which a poll stream yields None (PollTasks sends a heartbeat).
        self.idle_seconds = 15.0
        self._pending: dict[QueueKey, deque[str]] = {}
        self._queued: set[str] = set()
        self._leases: dict[str, _Lease] = {}
        # Ids with a lease, release or result write in flight: nobody else may pick them up meanwhile.
        self._busy: set[str] = set()
        self._waiting: dict[QueueKey, dict[_Poller, None]] = {}
        self._pollers: set[_Poller] = set()
        self._closed = False
        self._expiry: list[tuple[float, str]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every open task (recovery after a restart), then start the sweeper."""
        rows = await stored.open_tasks(self.reader)
        for row in rows:
            key = (row.workspace_id, row.queue)
            if row.status == "pending":
                self._enqueue(row.id, key)
            elif row.id not in self._leases:
                # Its worker may still be at it: it keeps the lease until the lease runs out.
                self._watch(row.id, _Lease(row.lease_owner or "", key, row.lease_expires_at or 0.0))
        if rows:
            log.info("task dispatcher loaded %d open tasks", len(rows))
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="runctl-task-sweeper")

    def end_streams(self) -> None:
        """Every open PollTasks stream ends now, and new ones at once (the server is shutting down)."""
        self._closed = True
        for poller in tuple(self._pollers):
            poller.wake.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._sweeper, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sweeper = None

    def on_task_created(self, row: Mapping[str, Any]) -> None:
        """Scheduler callback, after the task row is committed."""
        self._enqueue(str(row["id"]), (str(row["workspace_id"]), str(row["queue"])))

    # -- polling -----------------------------------------------------------------------------------

    async def poll(
        self, workspace_id: str, worker_id: str, queues: Sequence[str], max_in_flight: int = 0
    ) -> AsyncGenerator[DispatchedTask | None, None]:
        """Lease and yield tasks of `queues` to this worker as they come, never more than
        `max_in_flight` unfinished at once. Yields None when there is no task: once at the start (the
        stream is ready) and then after every `idle_seconds` without one."""
        poller = self._open(workspace_id, worker_id, queues, max_in_flight)
        ready_sent = False
        try:
            while True:
                if self._closed:
                    raise Unavailable(
                        "the server is shutting down: open PollTasks again (to another replica); "
                        "the tasks this worker holds stay its own until their heartbeat timeout",
                        reason="SHUTTING_DOWN",
                    )
                if len(poller.in_flight) < poller.max_in_flight:
                    task_id = self._take(poller)
                    if task_id is not None:
                        task = await self._lease(poller, task_id)
                        if task is not None:
                            ready_sent = True
                            yield task
                        continue
                if not ready_sent:
                    ready_sent = True
                    yield None
                    continue
                poller.wake.clear()
                if len(poller.in_flight) < poller.max_in_flight:
                    self._park(poller)
                try:
                    async with asyncio.timeout(self.idle_seconds):
                        await poller.wake.wait()
                except TimeoutError:
                    self._unpark(poller)
                    yield None
                else:
                    self._unpark(poller)
        finally:
            self._close(poller)

    def _open(self, workspace_id: str, worker_id: str, queues: Sequence[str], max_in_flight: int) -> _Poller:
        violations: list[FieldViolation] = []
        if not worker_id.strip():
            violations.append(FieldViolation("worker_id", "required: a stable name of the worker process"))
        elif len(worker_id) > MAX_NAME:
            violations.append(FieldViolation("worker_id", f"must be at most {MAX_NAME} characters"))
        if not queues:
            violations.append(FieldViolation("queues", "required: at least one queue to serve"))
        elif len(queues) > MAX_QUEUES:
            violations.append(FieldViolation("queues", f"at most {MAX_QUEUES} queues per stream"))
        for index, queue in enumerate(queues):
            if not queue.strip() or len(queue) > MAX_NAME:
                violations.append(
                    FieldViolation(
                        f"queues[{index}]", f"must be a non-empty name of at most {MAX_NAME} characters"
                    )
                )
        if max_in_flight < 0:
            violations.append(FieldViolation("max_in_flight", "must not be negative (0 means 1)"))
        if violations:
            raise InvalidArgument("the poll request is not valid", violations, reason="FIELD_INVALID")
        keys = tuple(dict.fromkeys((workspace_id, queue) for queue in queues))
        poller = _Poller(workspace_id, worker_id, keys, min(max(max_in_flight, 1), MAX_IN_FLIGHT))
        self._pollers.add(poller)
        return poller

    def _close(self, poller: _Poller) -> None:
        self._unpark(poller)
        self._pollers.discard(poller)
        # Tasks it received stay leased to the worker, which may still report them; if it does not,
        # they are re-dispatched when the lease runs out.
        for task_id in poller.in_flight:
            lease = self._leases.get(task_id)
            if lease is not None and lease.poller is poller:
                lease.poller = None
        poller.in_flight.clear()
        # A wake-up meant for this stream must not be lost with it.
        if poller.wake.is_set():
            for key in poller.keys:
                if self._pending.get(key):
                    self._wake_one(key)

    def _take(self, poller: _Poller) -> str | None:
        count = len(poller.keys)
        for step in range(count):
            key = poller.keys[(poller.turn + step) % count]
            pending = self._pending.get(key)
            if not pending:
                continue
            task_id = pending.popleft()
            if not pending:
                del self._pending[key]
            self._queued.discard(task_id)
            poller.turn = (poller.turn + step + 1) % count
            return task_id
        return None

    def _park(self, poller: _Poller) -> None:
        for key in poller.keys:
            self._waiting.setdefault(key, {})[poller] = None

    def _unpark(self, poller: _Poller) -> None:
        for key in poller.keys:
            waiting = self._waiting.get(key)
            if waiting is not None:
                waiting.pop(poller, None)
                if not waiting:
                    del self._waiting[key]

    def _wake_one(self, key: QueueKey) -> None:
        # One task, one wake-up: the longest-waiting poller of the queue, not all of them.
        waiting = self._waiting.get(key)
        if waiting:
            poller = next(iter(waiting))
            self._unpark(poller)
            poller.wake.set()

    def _enqueue(self, task_id: str, key: QueueKey) -> None:
        if task_id in self._queued or task_id in self._leases or task_id in self._busy:
            return
        self._pending.setdefault(key, deque()).append(task_id)
        self._queued.add(task_id)
        self._wake_one(key)

    async def _lease(self, poller: _Poller, task_id: str) -> DispatchedTask | None:
        self._busy.add(task_id)
        # Shielded: if the stream closes meanwhile, the lease may still commit and must be undone.
        attempt = asyncio.ensure_future(self._acquire(poller.worker_id, task_id))
        try:
            task = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._give_back(done, task_id, poller.worker_id))
            raise
        except Exception:
            self._busy.discard(task_id)
            log.exception("could not lease task %s; it is dispatched again later", task_id)
            self._enqueue_later(task_id)
            return None
        self._busy.discard(task_id)
        if task is not None:
            expires_at = self.clock.now() + task.heartbeat_timeout
            lease = _Lease(poller.worker_id, (poller.workspace_id, task.queue), expires_at, poller)
            self._watch(task_id, lease)
            poller.in_flight.add(task_id)
        return task

    async def _acquire(self, worker_id: str, task_id: str) -> DispatchedTask | None:
        """Lease the task in the database; answers it if this worker now holds it and the run wants it."""
        stamp = self.clock.now()
        await self._commit(stored.lease_pending(task_id, worker_id, stamp))
        row = await stored.task(self.reader, task_id)
        # Ours only if this very write landed: the same worker may hold an older lease of it through
        # another server process, which the owner alone would not tell apart.
        if row is None or row.status != "leased" or row.lease_owner != worker_id or row.updated_at != stamp:
            return None  # finished, cancelled, or leased through another process
        reason = _stale_reason(row)
        if reason is not None:
            log.info("task %s is not dispatched: %s", task_id, reason)
            await self._commit(stored.cancel_open(task_id, self.clock.now()))
            return None
        return _view(row)

    def _give_back(self, done: asyncio.Future[DispatchedTask | None], task_id: str, worker_id: str) -> None:
        if done.cancelled() or done.exception() is not None or done.result() is None:
            self._busy.discard(task_id)
            return

        async def give_back() -> None:
            try:
                await self._commit(stored.return_unsent(task_id, worker_id, self.clock.now()))
            finally:
                self._busy.discard(task_id)
            self._enqueue_later(task_id)

        self._spawn(give_back())

    def _enqueue_later(self, task_id: str) -> None:
        """Queue a task again once its row says which queue (used after a failed or undone lease)."""

        async def requeue() -> None:
            row = await stored.task(self.reader, task_id)
            if row is not None and row.status == "pending":
                self._enqueue(task_id, (row.workspace_id, row.queue))

        self._spawn(requeue())

    # -- leases ------------------------------------------------------------------------------------

    def _watch(self, task_id: str, lease: _Lease) -> None:
        self._leases[task_id] = lease
        heapq.heappush(self._expiry, (lease.expires_at, task_id))

    def _forget(self, task_id: str) -> _Lease | None:
        """Drop a lease from memory and give its stream's slot back."""
        lease = self._leases.pop(task_id, None)
        if lease is not None and lease.poller is not None:
            lease.poller.in_flight.discard(task_id)
            lease.poller.wake.set()
        return lease

    async def _sweep_forever(self) -> None:
        last_rescan = self.clock.now()
        while True:
            await self.clock.sleep(self._until_next_sweep())
            try:
                self._sweep(self.clock.now())
                if self.clock.now() - last_rescan >= RESCAN_SECONDS:
                    last_rescan = self.clock.now()
                    await self._rescan()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task sweeper failed; it tries again")

    def _until_next_sweep(self) -> float:
        """SWEEP_SECONDS, or less when a lease runs out sooner, so it is released when it runs out rather
        than up to a sweep later; on a test's clock, moving past a lease is enough to expire it."""
        if not self._expiry:
            return SWEEP_SECONDS
        return max(0.0, min(SWEEP_SECONDS, self._expiry[0][0] - self.clock.now()))

    def _sweep(self, stamp: float) -> None:
        while self._expiry and self._expiry[0][0] <= stamp:
            expires_at, task_id = heapq.heappop(self._expiry)
            lease = self._leases.get(task_id)
            # Entries of extended or settled leases are stale: the heap is cleaned lazily.
            if lease is None or lease.expires_at != expires_at:
                continue
            self._forget(task_id)
            self._busy.add(task_id)
            self._spawn(self._release(task_id, lease.key))

    async def _release(self, task_id: str, key: QueueKey) -> None:
        """The worker went silent: back to pending (one more delivery attempt), then dispatch again."""
        try:
            await self._commit(stored.release_expired(task_id, self.clock.now()))
        finally:
            self._busy.discard(task_id)
        log.info("task %s: lease expired without a heartbeat; dispatching it again", task_id)
        # If the guard did not match (finished, cancelled, extended elsewhere), the lease attempt finds out.
        self._enqueue(task_id, key)

    def on_task_elsewhere(self, workspace_id: str, queue: str) -> None:
        """Another replica created a task: look at its queue now if a worker here serves it."""
        key = (workspace_id, queue)
        if any(key in poller.keys for poller in self._pollers):
            self._spawn(self._rescan({key}))

    async def _rescan(self, only: set[QueueKey] | None = None) -> None:
        """Pick up pending and abandoned tasks of served queues that this process does not track."""
        keys = only if only is not None else {key for poller in self._pollers for key in poller.keys}
        for key in keys:
            backlog = await stored.queue_backlog(
                self.reader, key[0], key[1], now=self.clock.now(), limit=RESCAN_LIMIT
            )
            for task_id, status in backlog:
                if task_id in self._queued or task_id in self._leases or task_id in self._busy:
                    continue
                if status == "pending":
                    self._enqueue(task_id, key)
                else:
                    self._busy.add(task_id)
                    self._spawn(self._release(task_id, key))

    # -- worker calls ------------------------------------------------------------------------------

    async def _row(self, workspace_id: str, task_id: str) -> TaskRecord:
        row = await stored.task(self.reader, task_id) if task_id else None
        if row is None or row.workspace_id != workspace_id:
            raise NotFound(f"task {task_id!r} not found", reason="TASK_NOT_FOUND")
        return row

    def _check_holder(self, row: TaskRecord, worker_id: str) -> None:
        """FAILED_PRECONDITION unless `worker_id` holds the task's lease right now."""
        task_id = row.id
        lease = self._leases.get(task_id)
        if (
            task_id in self._busy
            or task_id in self._queued
            or (lease is not None and lease.owner != worker_id)
        ):
            raise FailedPrecondition(
                f"task {task_id} is no longer assigned to worker {worker_id!r}: it is being dispatched again",
                reason="TASK_NOT_LEASED",
            )
        if row.status != "leased" or row.lease_owner != worker_id:
            what = (
                "was re-dispatched to another worker"
                if row.status in ("pending", "leased")
                else f"is {row.status}"
            )
            raise FailedPrecondition(
                f"task {task_id} is not assigned to worker {worker_id!r}: it {what}", reason="TASK_NOT_LEASED"
            )

    async def heartbeat(
        self, workspace_id: str, task_id: str, worker_id: str, progress: Mapping[str, Any] | None = None
    ) -> bool:
        """Extend the worker's lease; answers True when the worker should abandon the task."""
        row = await self._row(workspace_id, task_id)
        if row.status == "cancelled" and row.lease_owner == worker_id:
            self._forget(task_id)
            return True
        self._check_holder(row, worker_id)
        if _stale_reason(row) is not None:
            self._forget(task_id)
            await self._commit(stored.cancel_open(task_id, self.clock.now()))
            return True
        stamp = self.clock.now()
        expires_at = stamp + float(row.heartbeat_timeout)
        lease = self._leases.get(task_id)
        if lease is not None:
            lease.expires_at = expires_at
            heapq.heappush(self._expiry, (expires_at, task_id))
        await self._commit(stored.extend_lease(task_id, worker_id, expires_at, stamp))
        if progress and row.trace_logs:
            await self._log_progress(row, dict(progress))
        return False

    async def complete(self, workspace_id: str, task_id: str, worker_id: str, output: Any) -> None:
        """The worker finished the task: its output becomes the node's output."""
        row = await self._row(workspace_id, task_id)
        if row.status == "completed" and row.lease_owner == worker_id:
            return  # a repeated call: the first one already counted
        self._check_holder(row, worker_id)
        await self._refuse_if_stale(row)
        message = TaskCompleted(node_key=row.node_key, task_id=task_id, output=output)
        await self._settle(row, worker_id, "completed", message)

    async def fail(
        self,
        workspace_id: str,
        task_id: str,
        worker_id: str,
        message: str,
        *,
        code: str = "",
        retryable: bool = False,
    ) -> None:
        """The attempt failed: the node's retry policy decides whether another attempt runs."""
        violations = [] if message.strip() else [FieldViolation("message", "required: what went wrong")]
        if violations:
            raise InvalidArgument("the failure needs a message", violations, reason="FIELD_REQUIRED")
        row = await self._row(workspace_id, task_id)
        if row.status == "failed" and row.lease_owner == worker_id:
            return
        self._check_holder(row, worker_id)
        await self._refuse_if_stale(row)
        failure = NodeFailure(message, code=code or "TASK_FAILED", retryable=retryable)
        await self._settle(
            row, worker_id, "failed", TaskFailed(node_key=row.node_key, task_id=task_id, error=failure)
        )

    async def _refuse_if_stale(self, row: TaskRecord) -> None:
        """A result for a task its run no longer wants (run stopped, node timed out) is refused."""
        reason = _stale_reason(row)
        if reason is None:
            return
        self._forget(row.id)
        await self._commit(stored.cancel_open(row.id, self.clock.now()))
        raise FailedPrecondition(
            f"task {row.id} is no longer wanted: {reason}; its result is ignored", reason="TASK_NOT_LEASED"
        )

    async def _settle(self, row: TaskRecord, worker_id: str, status: str, message: Message) -> None:
        """Hand a result to the run, wait until the run has committed what it made of it, then close
        the task row. In that order, a crash in between re-dispatches the task (its repeated result is
        ignored by the run) instead of losing the result."""
        task_id = row.id
        self._forget(task_id)
        self._busy.add(task_id)
        try:
            taken: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._deliver(row.execution_id, message)
            barrier = Command(name="touch_node", args={"node_key": row.node_key}, reply=taken)
            self._deliver(row.execution_id, barrier)
            try:
                await asyncio.wait_for(taken, SETTLE_SECONDS)
            except TimeoutError:
                log.warning("run %s did not take the result of task %s in time", row.execution_id, task_id)
            await self._commit(stored.finish(task_id, worker_id, status, self.clock.now()))
        finally:
            self._busy.discard(task_id)

    async def _log_progress(self, row: TaskRecord, progress: dict[str, Any]) -> None:
        """The progress line is committed before the heartbeat is answered, so it is logged before
        anything the worker reports next (its CompleteTask)."""
        args = {"task_id": row.id, "node_key": row.node_key, "progress": progress}
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._deliver(row.execution_id, Command(name="log_task_progress", args=args, reply=reply))
        await reply

    # -- helpers -----------------------------------------------------------------------------------

    async def _commit(self, change: Change) -> None:
        await self.writer.commit(Mutation(statements=[change]))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task dispatcher background work failed", exc_info=task.exception())

    @property
    def stats(self) -> dict[str, int]:
        """Sizes of the in-memory state (for diagnostics and the memory-bound tests)."""
        return {
            "pending": len(self._queued),
            "leased": len(self._leases),
            "pollers": len(self._pollers),
            "expiry_entries": len(self._expiry),
        }


@command("touch_node")
def _touch_node(_steer: RunSteering, driven: Driven, args: dict[str, Any]) -> None:
    """A barrier: runs after the messages before it and makes its run commit (it rewrites the node's
    row), so its answer comes once what came before is durable."""
    record = driven.run.nodes.get(str(args["node_key"]))
    if record is not None:
        driven.run.touch(record)


@command("log_task_progress")
def _log_task_progress(_steer: RunSteering, driven: Driven, args: dict[str, Any]) -> None:
    record = driven.run.nodes.get(str(args["node_key"]))
    if record is not None and (record.state or {}).get("taskId") == args["task_id"]:
        entry = {"time": now(), "level": "info", "message": "task progress", "details": args["progress"]}
        record.logs.append(entry)
        driven.run.touch(record)
