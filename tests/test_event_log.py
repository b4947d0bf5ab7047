"""The event log as typed records: events committed through the real group-commit writer to a migrated
database come back from the log's reads (store/event_log.py) as LoggedEvent records equal to what was
committed, on SQLite and on PostgreSQL; and a live event's Event is made once for every watcher of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runctl.v1 import event_pb2
from runctl_server.api import event_convert
from runctl_server.events.follow import EventFilter, Follower
from runctl_server.events.hub import EventHub
from runctl_server.store import event_log
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from runctl_server.store.reads import Reader
from runctl_server.store.records import LoggedEvent
from runctl_server.store.writer import EventRecord, Mutation, Writer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def log(db_url: str) -> AsyncIterator[tuple[Writer, Reader, list[EventRecord]]]:
    engine = create_db_engine(db_url)
    upgrade_to_head(engine)
    published: list[EventRecord] = []
    writer = Writer(engine, published.extend)
    writer.start()
    try:
        yield writer, Reader(engine), published
    finally:
        await writer.stop()
        engine.dispose()


def fields(event: LoggedEvent) -> tuple[object, ...]:
    """What a reader of the log sees of an event (an EventRecord's own `payload` is the writer's input)."""
    return (
        event.sequence,
        event.workspace_id,
        event.type,
        event.time,
        event.workflow_id,
        event.execution_id,
        event.batch_id,
        event.node_id,
        event.payload_json,
    )


async def test_reads_answer_the_committed_events_as_records(
    log: tuple[Writer, Reader, list[EventRecord]],
) -> None:
    writer, reader, _published = log
    before = await event_log.last_sequence(reader) or 0
    payload = {"nodeKey": "fetch", "nodeType": "http", "status": "completed", "output": {"n": 1.5, "s": "é"}}
    committed = await writer.commit(
        Mutation(
            events=[
                EventRecord(
                    "NODE_COMPLETED",
                    "ws1",
                    execution_id="exec_1",
                    workflow_id="wf_1",
                    node_id="fetch",
                    payload=payload,
                    time=1700000000.25,
                ),
                EventRecord("BATCH_STARTED", "ws1", batch_id="batch_1", payload={"batch": {"id": "batch_1"}}),
                EventRecord("EXECUTION_STARTED", "ws2", execution_id="exec_2", payload={"input": {}}),
            ]
        )
    )
    assert [event.sequence for event in committed] == [before + 1, before + 2, before + 3]
    payload["output"] = "changed after the commit"  # what was committed stays as it was
    assert (
        committed[0].payload_json
        == '{"nodeKey":"fetch","nodeType":"http","status":"completed","output":{"n":1.5,"s":"é"}}'
    )

    between = await event_log.events_between(reader, after=before, through=before + 3, limit=10)
    assert all(type(event) is LoggedEvent for event in between)
    assert [fields(event) for event in between] == [fields(event) for event in committed]

    run = await event_log.run_events(reader, "exec_1", after=0, limit=10)
    assert [fields(event) for event in run] == [fields(committed[0])]
    matching = await event_log.matching_events(reader, "ws1", after=before, limit=10, batch_id="batch_1")
    assert [event.sequence for event in matching] == [before + 2]
    without_nodes = await event_log.matching_events(
        reader, "ws1", after=before, limit=10, without_node_events=True
    )
    assert [event.type for event in without_nodes] == ["BATCH_STARTED"]
    assert await event_log.last_sequence(reader) == before + 3

    # The Event made from the committed record and from the one read back are the same message.
    assert event_convert.event(committed[0]) == event_convert.event(run[0])
    output = event_convert.event(run[0]).node_completed_attributes.output.struct_value
    assert (output["n"], output["s"]) == (1.5, "é")


async def test_a_live_event_becomes_one_event_message_for_every_watcher(
    log: tuple[Writer, Reader, list[EventRecord]],
) -> None:
    _writer, reader, _published = log
    hub = EventHub()
    hub.last_sequence = cursor = await event_log.last_sequence(reader) or 0
    made: list[int] = []

    def convert(event: LoggedEvent) -> event_pb2.Event:
        made.append(event.sequence)
        return event_convert.event(event)

    live = EventRecord(
        "EXECUTION_STARTED",
        "ws1",
        execution_id="exec_1",
        payload={},
        sequence=cursor + 1,
        payload_json='{"name":"x"}',
    )
    async with (
        Follower(hub, reader, EventFilter("ws1"), buffer=10, heartbeat=60) as everything,
        Follower(hub, reader, EventFilter("ws1", execution_id="exec_1"), buffer=10, heartbeat=60) as one_run,
    ):
        streams = [follower.deliveries(cursor) for follower in (everything, one_run)]
        hub.publish([live])  # committed elsewhere: the log is read (nothing new there), then the hub
        deliveries = [await anext(stream) for stream in streams]
    [event_a], [event_b] = (delivery.events for delivery in deliveries)
    assert event_a is event_b is live  # the committed record itself, no copy per watcher
    messages = [event.derived(convert) for event in (event_a, event_b)]
    assert made == [live.sequence] and messages[0] is messages[1]
    assert event_convert.shared(event_a) is event_convert.shared(event_b)
    assert event_convert.shared(event_a).execution_started_attributes.name == "x"
