"""The single writer: group commit of many runs' state changes and their events.

Mutations queue up while a commit is in flight; the writer thread takes everything pending and commits
it in one transaction, so one fsync serves many runs. Events are handed to the `on_commit` callback on
the event loop only after the commit succeeded.

Sequence numbers. Every event gets a global, gapless sequence number inside the transaction that
appends it, from one counter row: `UPDATE counters ... RETURNING value`. On PostgreSQL that UPDATE
locks the row until the transaction ends, so while one transaction holds numbers N..M no other process
can take a number at all; the next one gets M+1 only once N..M are committed (or, on a rollback, gets
N again). Numbers therefore become visible in order: a reader that sees event M+1 committed can never
later find an event numbered M or lower appear, so a cursor never passes a number that another process
commits later. The counter is taken last in the transaction, after the run's own statements, so the
lock is held only for the event insert and the commit; on PostgreSQL the allocation and the insert are
one statement, pipelined with the COMMIT, so no client round trip happens while the row is locked.
SQLite has one writing process (a file lock keeps a second one out), so there the same order holds
trivially.

Fencing. With leases (several replicas on PostgreSQL), a mutation that changes a run carries the epoch
its driver loaded the run with. The transaction first locks those runs' rows and drops every mutation
whose epoch is no longer the row's (another replica took the run over): those fail with LeaseLost and
nothing of them is stored. The row lock holds a concurrent claim back until the commit, so a change is
committed only by the replica that holds the run's lease at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from runctl_server.store import sql

log = logging.getLogger(__name__)

MAX_BATCH = 2000

_INSERT_EVENT = (
    "INSERT INTO events (sequence, workspace_id, type, time, workflow_id, execution_id, batch_id, node_id,"
    " payload) VALUES (:sequence, :workspace_id, :type, :time, :workflow_id, :execution_id, :batch_id,"
    " :node_id, :payload)"
)
_ALLOCATE = "UPDATE counters SET value = value + :n WHERE name = 'event_sequence' RETURNING value"
# PostgreSQL: the allocation, the events and the wake-up of other replicas in one statement, sent with
# the COMMIT in one pipeline, so the counter row (which orders every commit with events, cluster-wide)
# is locked only while the server inserts the rows and flushes the commit, never across a round trip.
_ALLOCATE_AND_INSERT_PG = """
WITH allocated AS (
    UPDATE counters SET value = value + %(n)s WHERE name = 'event_sequence' RETURNING value
), inserted AS (
    INSERT INTO events (sequence, workspace_id, type, time, workflow_id, execution_id, batch_id, node_id,
                        payload)
    SELECT allocated.value - %(n)s + e.ord, e.workspace_id, e.type, e.time, e.workflow_id, e.execution_id,
           e.batch_id, e.node_id, e.payload
    FROM allocated, json_to_recordset(%(events)s::json) AS e(
        ord bigint, workspace_id text, type text, time float8, workflow_id text, execution_id text,
        batch_id text, node_id text, payload text
    )
    RETURNING 1
)
SELECT value, pg_notify('runctl_events', value::text) FROM allocated
"""


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON of every row and event the engine commits.

    orjson writes the same text as the standard encoder (compact, UTF-8, the same float repr) about ten
    times faster; what it refuses (integers beyond 64 bits, keys that are not strings) goes to the
    standard encoder. NaN and infinities, which the API refuses in inputs but a node can compute
    (`to_number('NaN')`), become null: JSON has no such numbers, and stored as `NaN` they made every
    JSON read of the run fail.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _ENCODER.encode(value)


def _number(events: list[EventRecord], last: int) -> None:
    """Give the events, in order, the sequence numbers that end at `last`."""
    for offset, event in enumerate(events):
        event.sequence = last - len(events) + 1 + offset


def _event_columns(events: list[EventRecord]) -> dict[str, Any]:
    """The events as one JSON document that PostgreSQL turns into rows (json_to_recordset): encoding
    it is one call of the C JSON encoder, where arrays would be adapted element by element."""
    rows = []
    for ord, event in enumerate(events, start=1):
        event.payload_json = dumps(event.payload)
        rows.append(
            {
                "ord": ord,
                "workspace_id": event.workspace_id,
                "type": event.type,
                "time": event.time,
                "workflow_id": event.workflow_id,
                "execution_id": event.execution_id,
                "batch_id": event.batch_id,
                "node_id": event.node_id,
                "payload": event.payload_json,
            }
        )
    return {"n": len(events), "events": dumps(rows)}


@dataclass
class EventRecord:
    """An event to append; `sequence` is set by the writer when it commits."""

    type: str
    workspace_id: str
    execution_id: str | None = None
    workflow_id: str | None = None
    batch_id: str | None = None
    node_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    sequence: int = 0
    # The payload as committed (JSON); set by the writer, so later edits of `payload` cannot leak
    # into what watchers are sent.
    payload_json: str = ""
    _row: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EventRecord:
        """An event read back from the log (committed by another process)."""
        event = cls(
            type=row["type"],
            workspace_id=row["workspace_id"],
            execution_id=row["execution_id"],
            workflow_id=row["workflow_id"],
            batch_id=row["batch_id"],
            node_id=row["node_id"],
            payload=json.loads(row["payload"]) if row["payload"] else {},
            time=float(row["time"]),
            sequence=int(row["sequence"]),
            payload_json=row["payload"] or "{}",
        )
        event._row = dict(row)
        return event

    def row(self) -> dict[str, Any]:
        """The event as the events table holds it (what readers of the log get); built once and shared
        by every watcher, which may memoize what it derives from it in the same dict."""
        if self._row is None:
            self._row = self._build_row()
        return self._row

    def _build_row(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "workspace_id": self.workspace_id,
            "type": self.type,
            "time": self.time,
            "workflow_id": self.workflow_id,
            "execution_id": self.execution_id,
            "batch_id": self.batch_id,
            "node_id": self.node_id,
            "payload": self.payload_json or dumps(self.payload),
        }


# One statement for the writer: SQL of store/ and its named parameters.
Change = tuple[str, Mapping[str, Any]]


@dataclass
class Mutation:
    """Statements and events that commit together or not at all."""

    statements: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    # (execution id, lease epoch): commit only while the run's lease still has this epoch.
    fence: tuple[str, int] | None = None

    def add(self, sql: str, params: Mapping[str, Any]) -> None:
        self.statements.append((sql, params))

    def emit(self, event: EventRecord) -> None:
        self.events.append(event)

    def __bool__(self) -> bool:
        return bool(self.statements or self.events)


class WriteError(RuntimeError):
    """A mutation could not be committed; nothing of it was stored."""


class LeaseLost(WriteError):
    """The run's lease moved to another replica: this process must stop driving it."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"run {execution_id} is driven by another replica now")
        self.execution_id = execution_id


def _merged_for_postgres(mutations: Sequence[Mutation]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The mutations' statements in their order, for psycopg, with each run of node-state upserts sent
    as one statement. A run is cut before a node that is already in it, so one statement never writes
    a row twice; otherwise one statement inserting the rows in order is what the statements one by
    one would have done."""
    nodes: list[Mapping[str, Any]] = []
    keys: set[tuple[Any, Any]] = set()

    def flush() -> Iterator[tuple[str, Mapping[str, Any]]]:
        if len(nodes) == 1:
            yield _pyformat(sql.UPSERT_NODE), nodes[0]
        elif nodes:
            yield sql.UPSERT_NODES_PG, {"rows": dumps(nodes)}
        nodes.clear()
        keys.clear()

    for mutation in mutations:
        for statement, params in mutation.statements:
            if statement is sql.UPSERT_NODE:
                key = (params["execution_id"], params["node_key"])
                if key in keys:
                    yield from flush()
                nodes.append(params)
                keys.add(key)
                continue
            yield from flush()
            yield _pyformat(statement), params
    yield from flush()


@lru_cache(maxsize=512)
def _pyformat(statement: str) -> str:
    return re.sub(r"(?<!:):([A-Za-z_]\w*)", r"%(\1)s", statement)


_STOP = object()


class Writer:
    """Owns one database connection in a thread; `commit()` returns once the mutation is durable."""

    def __init__(
        self, engine: Engine, on_commit: Callable[[list[EventRecord]], None], *, fencing: bool = False
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._postgres = engine.dialect.name == "postgresql"
        # Several processes on one PostgreSQL database: fence run changes, tell others of new events.
        self.fencing = fencing and self._postgres
        self.fenced_out = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.commits = 0
        # The highest sequence this process has committed, set in the writer thread at once (before
        # the events reach the event loop): the relay need not read its own commits back.
        self.committed_through = 0
        self.committed_mutations = 0
        # True while the writer thread commits a batch; `settled()` waits for that batch's outcome to
        # reach the event loop (the relay: a notification may announce our own commit before it does).
        self._in_flight = False
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._connection: Any = None
        # Told how long each group commit took (the commit latency histogram), from the writer thread.
        self.observe_commit: Callable[[float], None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="runctl-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def commit(self, mutation: Mutation) -> list[EventRecord]:
        """Queue the mutation and wait until it is committed; answers its events with sequences. A fenced
        mutation with nothing in it still checks the lease (a handler's answer must not come from a
        replica that lost the run)."""
        if not mutation and (mutation.fence is None or not self.fencing):
            return []
        assert self._loop is not None, "writer not started"
        future: asyncio.Future[list[EventRecord]] = self._loop.create_future()
        self._queue.put((mutation, future))
        return await future

    async def settled(self) -> None:
        """Return once the batch being committed now, if any, has handed its events to the event loop.

        Runs on the event loop. Seeing `_in_flight` set means the batch's wake-up is not queued yet,
        so the waiter added here is woken by it (after the batch's delivery)."""
        if not self._in_flight or self._loop is None:
            return
        waiter = self._loop.create_future()
        self._settle_waiters.append(waiter)
        await waiter

    def _wake_settled(self) -> None:
        waiters, self._settle_waiters = self._settle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is _STOP:
                    break
                batch = [item]
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._in_flight = True
                try:
                    self._commit_batch(batch)
                finally:
                    # Cleared before the wake-up is queued, which runs after the batch's own delivery.
                    self._in_flight = False
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(self._wake_settled)
        finally:
            self._drop_connection()

    def _connection_ready(self) -> Any:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def _rollback(self) -> None:
        """Undo a failed transaction; a connection that cannot even do that (the database restarted
        under it) is dropped, and the next commit opens a new one."""
        if self._connection is None:
            return
        try:
            self._connection.rollback()
        except Exception:
            self._drop_connection()

    def _commit_batch(self, batch: list[tuple[Mutation, asyncio.Future[Any]]]) -> None:
        started = time.perf_counter()
        try:
            lost = self._apply(self._connection_ready(), [mutation for mutation, _ in batch])
        except Exception as exc:
            self._rollback()
            if len(batch) == 1:
                log.error("commit failed: %s", exc, exc_info=self._connection is not None)
                self._deliver([(batch[0][1], WriteError(f"could not store the change: {exc}"))], [])
                return
            # One bad mutation must not fail its neighbours: retry each on its own.
            for single in batch:
                self._commit_batch([single])
            return
        if self.observe_commit is not None:
            self.observe_commit(time.perf_counter() - started)
        self.commits += 1
        for mutation, _future in batch:
            if id(mutation) not in lost and mutation.events:
                self.committed_through = max(self.committed_through, mutation.events[-1].sequence)
        self.committed_mutations += len(batch) - len(lost)
        self.fenced_out += len(lost)
        kept = [(mutation, future) for mutation, future in batch if id(mutation) not in lost]
        events = [event for mutation, _ in kept for event in mutation.events]
        outcomes: list[tuple[asyncio.Future[Any], Any]] = [
            (future, mutation.events) for mutation, future in kept
        ]
        outcomes += [
            (future, LeaseLost(mutation.fence[0]))
            for mutation, future in batch
            if id(mutation) in lost and mutation.fence is not None
        ]
        self._deliver(outcomes, events)

    def _apply(self, connection: Any, mutations: Sequence[Mutation]) -> set[int]:
        """Commit the mutations; answers the ids (id()) of those refused for a lost lease."""
        cursor = connection.cursor()
        lost: set[int] = set()
        if self.fencing:
            lost = self._check_fences(cursor, mutations)
            if lost:
                mutations = [mutation for mutation in mutations if id(mutation) not in lost]
        events = [event for mutation in mutations for event in mutation.events]
        if self._postgres:
            driver = connection.driver_connection
            with driver.pipeline():
                for statement, params in _merged_for_postgres(mutations):
                    cursor.execute(statement, params)
                if events:
                    cursor.execute(_ALLOCATE_AND_INSERT_PG, _event_columns(events))
                driver.commit()
            if events:
                _number(events, int(cursor.fetchone()[0]))
        else:
            self._execute_sqlite(cursor, mutations, events)
            connection.commit()
        return lost

    @staticmethod
    def _check_fences(cursor: Any, mutations: Sequence[Mutation]) -> set[int]:
        wanted: dict[str, set[int]] = {}
        for mutation in mutations:
            if mutation.fence is not None:
                wanted.setdefault(mutation.fence[0], set()).add(mutation.fence[1])
        if not wanted:
            return set()
        # Locked in one order, so two writers (or a writer and a claim) never wait on each other in a cycle.
        cursor.execute(
            "SELECT id, lease_epoch FROM executions WHERE id = ANY(%(ids)s) ORDER BY id FOR NO KEY UPDATE",
            {"ids": sorted(wanted)},
        )
        current = {str(row[0]): int(row[1]) for row in cursor.fetchall()}
        return {
            id(mutation)
            for mutation in mutations
            if mutation.fence is not None and current.get(mutation.fence[0]) != mutation.fence[1]
        }

    @staticmethod
    def _execute_sqlite(cursor: Any, mutations: Sequence[Mutation], events: list[EventRecord]) -> None:
        for mutation in mutations:
            for statement, params in mutation.statements:
                cursor.execute(statement, params)
        if events:
            cursor.execute(_ALLOCATE, {"n": len(events)})
            _number(events, int(cursor.fetchone()[0]))
            for event in events:
                event.payload_json = dumps(event.payload)
            cursor.executemany(
                _INSERT_EVENT,
                [
                    {
                        "sequence": e.sequence,
                        "workspace_id": e.workspace_id,
                        "type": e.type,
                        "time": e.time,
                        "workflow_id": e.workflow_id,
                        "execution_id": e.execution_id,
                        "batch_id": e.batch_id,
                        "node_id": e.node_id,
                        "payload": e.payload_json,
                    }
                    for e in events
                ],
            )

    def _deliver(self, outcomes: list[tuple[asyncio.Future[Any], Any]], events: list[EventRecord]) -> None:
        assert self._loop is not None

        def resolve() -> None:
            if events:
                self._on_commit(events)
            for future, outcome in outcomes:
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

        self._loop.call_soon_threadsafe(resolve)
