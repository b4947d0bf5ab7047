"""Live updates over the real gRPC API: WatchExecution, WatchBatch, StreamEvents.

Every test compares what a watcher received with the event log itself, event by event: no gap, no
duplicate, in order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.v1 import (
    batch_pb2,
    batch_pb2_grpc,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
)
from tests.engine_helpers import Client, linear
from tests.support import ServerThread, running_server, settings_for

TERMINAL = {"EVENT_TYPE_EXECUTION_COMPLETED", "EVENT_TYPE_EXECUTION_FAILED", "EVENT_TYPE_EXECUTION_STOPPED"}
SMALL = linear({"id": "work", "type": "transform", "config": {"output": "{{ input.n }}"}})


def write_flows(root: Path, count: int) -> None:
    for index in range(count):
        (root / f"flow-{index:03d}.json").write_text(json.dumps({**SMALL, "name": f"flow {index}"}))


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flows")
    (root / "many").mkdir()
    write_flows(root / "many", 200)
    (root / "some").mkdir()
    write_flows(root / "some", 40)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, flows: Path) -> Iterator[ServerThread]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with running_server(settings_for(url, workflows_dirs=(flows,))) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as client:
        yield client


def log_of(channel: grpc.Channel, **where: Any) -> list[event_pb2.Event]:
    """The event log itself, paged through ListEvents."""
    events = event_pb2_grpc.EventServiceStub(channel)
    found: list[event_pb2.Event] = []
    token = ""
    while True:
        page = events.ListEvents(
            event_pb2.ListEventsRequest(page_size=1000, page_token=token, **where), timeout=10
        )
        found.extend(page.events)
        token = page.next_page_token
        if not token:
            return found


def same_events(received: Iterable[event_pb2.Event], logged: Iterable[event_pb2.Event]) -> None:
    got = [json_format.MessageToDict(e) for e in received]
    want = [json_format.MessageToDict(e) for e in logged]
    assert [e["sequence"] for e in got] == [e["sequence"] for e in want]  # no gap, no duplicate
    assert got == want


def start_batch(client: Client, folder: str, concurrency: int) -> str:
    batches = batch_pb2_grpc.BatchServiceStub(client.channel)
    reply = batches.StartBatch(
        batch_pb2.StartBatchRequest(folder_path=folder, concurrency=concurrency, input=_struct({"n": 1})),
        timeout=30,
    )
    return str(reply.batch.batch_id)


def _struct(data: dict[str, Any]) -> Any:
    from tests.engine_helpers import to_struct

    return to_struct(data)


def wait_batch(client: Client, batch_id: str, timeout: float = 60) -> None:
    batches = batch_pb2_grpc.BatchServiceStub(client.channel)
    deadline = time.monotonic() + timeout
    while batches.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch_id)).batch.status == (
        batch_resource_pb2.BATCH_STATUS_RUNNING
    ):
        assert time.monotonic() < deadline, "batch did not finish"
        time.sleep(0.1)


def test_a_run_watcher_gets_a_snapshot_then_every_event_and_the_stream_ends(client: Client) -> None:
    doc = linear(
        {"id": "nap", "type": "delay", "config": {"seconds": 0.3}},
        {"id": "note", "type": "log", "config": {"message": "woke"}},
    )
    execution_id = client.start(doc).id
    watch = execution_pb2_grpc.ExecutionServiceStub(client.channel).WatchExecution(
        execution_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=20
    )
    messages = list(watch)  # ends by itself at the terminal event
    assert messages[0].WhichOneof("kind") == "snapshot"
    snapshot_cursor = messages[0].cursor
    assert snapshot_cursor == messages[0].snapshot.last_sequence
    received = [e for m in messages[1:] if m.WhichOneof("kind") == "events" for e in m.events.events]
    same_events(received, [e for e in client.history(execution_id) if e.sequence > snapshot_cursor])
    assert event_pb2.EventType.Name(received[-1].type) in TERMINAL
    assert messages[-1].cursor == received[-1].sequence
    # Every node event of the run, in order, is in the stream or already in the snapshot.
    types = [event_pb2.EventType.Name(e.type) for e in received]
    assert "EVENT_TYPE_NODE_COMPLETED" in types


def test_a_quiet_watch_gets_heartbeats_and_a_finished_run_ends_at_once(client: Client) -> None:
    execution_id = client.start(linear({"id": "hold", "type": "wait"})).id
    stub = execution_pb2_grpc.ExecutionServiceStub(client.channel)
    watch = stub.WatchExecution(
        execution_pb2.WatchExecutionRequest(
            execution_id=execution_id, heartbeat_interval=duration_pb2.Duration(seconds=1)
        ),
        timeout=20,
    )
    kinds = []
    started = time.monotonic()
    for message in watch:
        kinds.append(message.WhichOneof("kind"))
        if kinds[-1] == "heartbeat":
            assert message.cursor >= kinds.count("snapshot") and message.heartbeat.time.seconds > 0
            break
    assert time.monotonic() - started < 5
    watch.cancel()
    client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id=execution_id))
    ended = list(
        stub.WatchExecution(execution_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=10)
    )
    assert [m.WhichOneof("kind") for m in ended] == ["snapshot"]
    last = list(client.history(execution_id))[-1].sequence
    caught_up = stub.WatchExecution(
        execution_pb2.WatchExecutionRequest(execution_id=execution_id, after_sequence=last), timeout=10
    )
    assert list(caught_up) == []
    with pytest.raises(grpc.RpcError) as caught:
        list(
            stub.WatchExecution(execution_pb2.WatchExecutionRequest(execution_id="exec_missing"), timeout=10)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_batch_watcher_that_reconnects_misses_nothing(client: Client) -> None:
    batch_id = start_batch(client, "many", concurrency=20)
    stub = batch_pb2_grpc.BatchServiceStub(client.channel)
    request = batch_pb2.WatchBatchRequest(batch_id=batch_id, after_sequence=0, include_node_events=True)
    received: list[event_pb2.Event] = []
    first = stub.WatchBatch(request, timeout=60)
    cursor = 0
    for message in first:
        received.extend(message.events.events)
        cursor = message.cursor
        if len(received) >= 300:
            first.cancel()  # the watcher goes away in the middle of the batch
            break
    request.after_sequence = cursor
    for message in stub.WatchBatch(request, timeout=60):
        received.extend(message.events.events)
    wait_batch(client, batch_id)
    log = log_of(client.channel, batch_id=batch_id)
    assert len(log) > 200 * 6
    same_events(received, log)


def test_two_hundred_watchers_of_one_batch_all_receive_everything(
    client: Client, server: ServerThread
) -> None:
    batch_id = start_batch(client, "some", concurrency=8)

    async def watch_all() -> list[list[event_pb2.Event]]:
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            stub = batch_pb2_grpc.BatchServiceStub(channel)

            async def one() -> list[event_pb2.Event]:
                request = batch_pb2.WatchBatchRequest(batch_id=batch_id, after_sequence=0)
                got: list[event_pb2.Event] = []
                async for message in stub.WatchBatch(request, timeout=60):
                    got.extend(message.events.events)
                return got

            return await asyncio.gather(*(one() for _ in range(200)))

    results = asyncio.run(watch_all())
    log = [
        e
        for e in log_of(client.channel, batch_id=batch_id)
        if not event_pb2.EventType.Name(e.type).startswith("EVENT_TYPE_NODE_")
    ]
    assert event_pb2.EventType.Name(log[-1].type) == "EVENT_TYPE_BATCH_COMPLETED"
    for got in results:
        same_events(got, log)


def test_a_slow_consumer_is_cut_off_and_resumes_from_its_cursor(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    (flows / "burst").mkdir(parents=True)
    write_flows(flows / "burst", 60)
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    settings = settings_for(url, workflows_dirs=(flows,), watch_buffer_events=20)
    options = [("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", 4 * 1024 * 1024)]
    with (
        running_server(settings) as handle,
        Client(handle.grpc_target) as client,
        grpc.insecure_channel(handle.grpc_target, options=options) as slow_channel,
    ):
        hub = handle.server.engine.hub  # type: ignore[union-attr]
        slow = event_pb2_grpc.EventServiceStub(slow_channel).StreamEvents(
            event_pb2.StreamEventsRequest(
                after_sequence=0, heartbeat_interval=duration_pb2.Duration(seconds=1)
            ),
            timeout=60,
        )
        next(iter(slow), None)  # the stream is open; from now on it is not read
        wait_for(lambda: len(hub._subscriptions) == 1)
        batch_id = start_batch(client, "burst", concurrency=10)
        wait_batch(client, batch_id)
        received: list[event_pb2.Event] = []
        with pytest.raises(grpc.RpcError) as caught:
            for message in slow:
                received.extend(message.events.events)
        assert caught.value.code() == grpc.StatusCode.ABORTED
        status = rpc_status.from_call(caught.value)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        status.details[0].Unpack(info)
        assert info.reason == "WATCHER_TOO_SLOW"
        cursor = int(info.metadata["cursor"])
        # The subscriber's buffer (bounded by the limit) is released with the stream.
        wait_for(lambda: not hub._subscriptions)
        # Catch up from the log: exactly what followed the cursor, up to the head of the log.
        head = log_of(client.channel)[-1].sequence
        resumed = client.events.StreamEvents(
            event_pb2.StreamEventsRequest(
                after_sequence=cursor, heartbeat_interval=duration_pb2.Duration(seconds=1)
            ),
            timeout=60,
        )
        for message in resumed:
            received.extend(message.events.events)
            if message.cursor >= head:
                resumed.cancel()
                break
        same_events(received, [e for e in log_of(client.channel) if e.sequence <= head])


def test_a_watch_resumes_across_a_restart_without_gaps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    doc = linear(
        {"id": "first", "type": "delay", "config": {"seconds": 0.5}},
        {"id": "second", "type": "delay", "config": {"seconds": 1.0}},
        {"id": "after", "type": "log", "config": {"message": "done"}},
    )
    received: list[event_pb2.Event] = []
    with running_server(settings_for(url)) as handle, Client(handle.grpc_target) as client:
        execution_id = client.start(doc).id
        watch = client.executions.WatchExecution(
            execution_pb2.WatchExecutionRequest(execution_id=execution_id, after_sequence=0), timeout=20
        )
        cursor = 0
        for message in watch:
            received.extend(message.events.events)
            cursor = message.cursor
            if any(e.node_id == "second" for e in message.events.events):
                break
        watch.cancel()
    with running_server(settings_for(url)) as handle, Client(handle.grpc_target) as client:
        request = execution_pb2.WatchExecutionRequest(execution_id=execution_id, after_sequence=cursor)
        for message in client.executions.WatchExecution(request, timeout=20):
            received.extend(message.events.events)
        assert client.get(execution_id).status == common_pb2.EXECUTION_STATUS_COMPLETED
        same_events(received, list(client.history(execution_id)))


def test_cleared_history_is_reported_not_skipped(client: Client) -> None:
    batch_id = start_batch(client, "some", concurrency=8)
    wait_batch(client, batch_id)
    before = log_of(client.channel)[0].sequence - 1
    batches = batch_pb2_grpc.BatchServiceStub(client.channel)
    batches.ClearBatches(batch_pb2.ClearBatchesRequest(), timeout=30)
    stream = event_pb2_grpc.EventServiceStub(client.channel).StreamEvents(
        event_pb2.StreamEventsRequest(
            after_sequence=before, heartbeat_interval=duration_pb2.Duration(seconds=1)
        ),
        timeout=20,
    )
    first = next(iter(stream))
    stream.cancel()
    assert first.history_truncated


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
