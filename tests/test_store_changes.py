"""The engine's hot-path changes (store/executions.py, store/pause_points.py, store/tasks.py), committed
through the real group-commit writer to a migrated database and read back through the store's own reads,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from runctl_server.store import executions, pause_points, tasks
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from runctl_server.store.reads import Reader
from runctl_server.store.records import NodeStateRecord, RunRecord, record
from runctl_server.store.writer import Change, Mutation, Writer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


class Store:
    def __init__(self, writer: Writer, reader: Reader) -> None:
        self.writer = writer
        self.reader = reader

    async def commit(self, *changes: Change) -> None:
        await self.writer.commit(Mutation(statements=list(changes)))

    async def run(self, execution_id: str) -> RunRecord:
        return executions.run_records(await self.reader.all(executions.run_statement(execution_id)))[0]

    async def nodes(self, execution_id: str) -> list[NodeStateRecord]:
        return executions.node_records(await self.reader.all(executions.nodes_statement(execution_id)))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    engine = create_db_engine(db_url)
    upgrade_to_head(engine)
    writer = Writer(engine, lambda _events: None)
    writer.start()
    try:
        yield Store(writer, Reader(engine))
    finally:
        await writer.stop()
        engine.dispose()


def new_run(execution_id: str) -> Change:
    return executions.insert_run(
        execution_id,
        workspace_id="default",
        workflow_id=None,
        workflow_version=None,
        document='{"nodes":[]}',
        name="nightly",
        source_path="flows/nightly.yaml",
        status="running",
        input='{"n":1}',
        current_node_id=None,
        paused_node_id=None,
        pause_reason=None,
        trace_logs=True,
        breakpoints_disabled=False,
        error=None,
        batch_id=None,
        parent_execution_id=None,
        parent_node_key=None,
        request_id="req-1",
        created_at=1000.0,
        started_at=1000.5,
        ended_at=None,
        parked=False,
        hold=None,
        lease_owner="replica-a",
        lease_epoch=1,
        trace_parent="00-abc-def-01",
    )


def node(
    execution_id: str,
    *,
    status: str,
    attempts: int,
    node_id: str = "fetch",
    stack: str | None,
    key: str = "fetch",
) -> Change:
    return executions.upsert_node(
        execution_id,
        key,
        node_id=node_id,
        node_type="http",
        status=status,
        attempts=attempts,
        output='{"ok":true}' if status == "completed" else None,
        error=None,
        branches=None,
        stack=stack,
        scheduled_at=1001.0,
        started_at=1002.0,
        completed_at=1003.0 if status == "completed" else None,
        stopped_at=None,
        failed_at=None,
        wake_at=None,
        logs=None,
        state=None,
    )


async def test_a_new_run_reads_back_as_the_record_its_change_describes(store: Store) -> None:
    change = new_run("exec-1")
    await store.commit(change)
    # The engine answers StartExecution from the change itself, without reading the row back.
    assert await store.run("exec-1") == record(RunRecord, change[1])


async def test_a_run_update_changes_its_state_and_keeps_its_origin(store: Store) -> None:
    await store.commit(new_run("exec-1"))
    before = await store.run("exec-1")
    await store.commit(
        executions.update_run(
            "exec-1",
            status="failed",
            current_node_id="fetch",
            paused_node_id=None,
            pause_reason=None,
            trace_logs=False,
            breakpoints_disabled=True,
            error='{"message":"boom"}',
            started_at=1000.5,
            ended_at=1010.0,
            updated_at=1010.0,
            parked=True,
            hold="operator",
        )
    )
    assert await store.run("exec-1") == replace(
        before,
        status="failed",
        current_node_id="fetch",
        trace_logs=False,
        breakpoints_disabled=True,
        error='{"message":"boom"}',
        ended_at=1010.0,
        updated_at=1010.0,
        parked=True,
        hold="operator",
        lease_owner=None,  # an ended run holds no lease
    )


async def test_a_run_keeps_its_lease_while_active_and_lets_go_when_it_ends(store: Store) -> None:
    await store.commit(new_run("exec-1"))
    for status, owner in (("paused", "replica-a"), ("running", "replica-a"), ("stopped", None)):
        await store.commit(
            executions.update_run(
                "exec-1",
                status=status,
                current_node_id=None,
                paused_node_id=None,
                pause_reason=None,
                trace_logs=False,
                breakpoints_disabled=False,
                error=None,
                started_at=1000.5,
                ended_at=1010.0 if owner is None else None,
                updated_at=1010.0,
                parked=False,
                hold=None,
            )
        )
        assert (await store.run("exec-1")).lease_owner == owner, status


async def test_a_node_upsert_inserts_once_then_overwrites_its_state(store: Store) -> None:
    await store.commit(new_run("exec-1"))
    await store.commit(node("exec-1", status="running", attempts=1, stack='[["loop",0]]'))
    [first] = await store.nodes("exec-1")
    assert (first.status, first.attempts, first.stack, first.completed_at) == (
        "running",
        1,
        '[["loop",0]]',
        None,
    )

    # Its id, type and stack are the node's identity: a later change does not move them.
    await store.commit(node("exec-1", status="completed", attempts=2, node_id="renamed", stack=None))
    [second] = await store.nodes("exec-1")
    assert second == replace(first, status="completed", attempts=2, output='{"ok":true}', completed_at=1003.0)


async def test_node_upserts_committed_together_land_as_one_by_one(store: Store) -> None:
    """On PostgreSQL the writer sends a commit's node upserts as one statement: a node written twice in
    one commit, and many runs' nodes in one group commit, end as the statements one by one would."""
    await store.commit(new_run("exec-1"))
    await store.commit(
        node("exec-1", status="running", attempts=1, stack='[["loop",0]]', key="a"),
        node("exec-1", status="running", attempts=1, stack=None, key="b"),
        node("exec-1", status="completed", attempts=2, node_id="renamed", stack=None, key="a"),
        node("exec-1", status="completed", attempts=1, stack=None, key="c"),
    )
    nodes = {n.node_key: n for n in await store.nodes("exec-1")}
    assert sorted(nodes) == ["a", "b", "c"]
    assert (nodes["a"].status, nodes["a"].attempts, nodes["a"].node_id, nodes["a"].stack) == (
        "completed",
        2,
        "fetch",
        '[["loop",0]]',
    )
    assert (nodes["b"].status, nodes["c"].status) == ("running", "completed")

    runs = [f"exec-{n}" for n in range(2, 42)]
    await asyncio.gather(
        *(store.commit((new_run(run)[0], {**new_run(run)[1], "request_id": None})) for run in runs)
    )
    await asyncio.gather(
        *(
            store.commit(
                *(node(run, status="completed", attempts=1, stack=None, key=f"n{k}") for k in range(5))
            )
            for run in runs
        )
    )
    for run in runs:
        assert sorted(n.node_key for n in await store.nodes(run)) == [f"n{k}" for k in range(5)]


async def test_a_pause_point_waits_until_resolved_once(store: Store) -> None:
    await store.commit(new_run("exec-1"))
    await store.commit(
        pause_points.insert(
            "ctx-1",
            workspace_id="default",
            execution_id="exec-1",
            workflow_id=None,
            node_key="approve",
            node_id="approve",
            kind="approval",
            display='{"title":"Ship?"}',
            form_fields="[]",
            stack="[]",
            registered_at=1001.0,
            expires_at=1061.0,
            expiry_action="fail",
        )
    )
    waiting = await pause_points.by_context(store.reader, "default", "ctx-1")
    assert waiting is not None
    assert (waiting.status, waiting.kind, waiting.display, waiting.expires_at, waiting.resolved_at) == (
        "paused",
        "approval",
        '{"title":"Ship?"}',
        1061.0,
        None,
    )

    await store.commit(pause_points.resolve("ctx-1", "resumed", resolved_at=1002.0, resume_data='{"ok":1}'))
    # A pause point already closed stays as its first resolution left it (e.g. an expiry racing a resume).
    await store.commit(pause_points.resolve("ctx-1", "expired", resolved_at=1061.0, resume_data=None))
    resolved = await pause_points.by_context(store.reader, "default", "ctx-1")
    assert resolved == replace(waiting, status="resumed", resolved_at=1002.0, resume_data='{"ok":1}')


async def test_a_task_is_pending_until_cancelled(store: Store) -> None:
    await store.commit(new_run("exec-1"))
    await store.commit(
        tasks.insert(
            "task-1",
            workspace_id="default",
            execution_id="exec-1",
            node_key="work",
            node_id="work",
            queue="gpu",
            type="external",
            attempt=1,
            idempotency_key="exec-1/work",
            payload='{"config":{}}',
            heartbeat_timeout=30.0,
            created_at=1001.0,
        )
    )
    pending = await tasks.task(store.reader, "task-1")
    assert pending is not None
    assert (pending.status, pending.queue, pending.attempt, pending.payload, pending.updated_at) == (
        "pending",
        "gpu",
        1,
        '{"config":{}}',
        1001.0,
    )
    assert [t.id for t in await tasks.open_tasks(store.reader)] == ["task-1"]

    await store.commit(tasks.cancel("task-1", 1005.0))
    cancelled = await tasks.task(store.reader, "task-1")
    assert cancelled == replace(pending, status="cancelled", updated_at=1005.0)
    assert await tasks.open_tasks(store.reader) == []
