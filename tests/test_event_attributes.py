"""Typed event attributes lose nothing of the payloads the engine logs.

Real workflows, run through a real server and the Python client, emit every event type. For each
type, every stored payload (read from the database itself) converts into the Event's typed
`attributes` with no key left over, and the attributes printed back as JSON (what the HTTP faces
show) give the stored payload again. The SSE face prints exactly the stored payloads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import duration_pb2, json_format

from runctl.client import Client
from runctl.v1 import (
    batch_pb2,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    execution_pb2,
    pause_point_pb2,
    workflow_pb2,
)
from runctl_server.api import convert, event_convert
from tests.engine_helpers import linear
from tests.support import ServerThread, free_port, running_server, settings_for, wait_for

EVENT_TYPES = sorted(
    name.removeprefix("EVENT_TYPE_")
    for name in event_pb2.EventType.keys()  # noqa: SIM118 (an enum wrapper, not a dict)
    if name not in ("EVENT_TYPE_UNSPECIFIED", "EVENT_TYPE_NODE_SCHEDULED")  # never logged
)
# Batch events carry Batch and BatchItem in proto JSON: compared as messages, since proto JSON
# leaves out zero values and may print times and durations with other digits.
MESSAGES: dict[str, type[Any]] = {"batch": batch_resource_pb2.Batch, "item": batch_resource_pb2.BatchItem}


Pairs = dict[str, list[tuple[dict[str, Any], event_pb2.Event]]]


@dataclass
class Logged:
    """Every event type -> its (stored payload, Event received through the client) pairs, and the
    runs that logged them."""

    by_type: Pairs
    runs: list[str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    db = tmp_path_factory.mktemp("db") / "runctl.db"
    with running_server(settings_for(f"sqlite:///{db}")) as handle:
        yield handle


@pytest.fixture(scope="module")
def db(server: ServerThread) -> Path:
    return Path(server.server.settings.db_url.removeprefix("sqlite:///"))


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as runctl:
        yield runctl


def status_of(client: Client, execution_id: str) -> int:
    return client.get(execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC).status


def open_context(client: Client, execution_id: str) -> str:
    """The context id of the run's open pause point, once it has one."""

    def found() -> str:
        points = client.get(execution_id).pause_points
        return next(
            (p.context_id for p in points if p.resume_status == pause_point_pb2.RESUME_STATUS_PAUSED), ""
        )

    return str(wait_for(found, what=f"a pause point of {execution_id}"))


def finished(client: Client, execution_id: str) -> None:
    ended = (
        common_pb2.EXECUTION_STATUS_COMPLETED,
        common_pb2.EXECUTION_STATUS_ERROR,
        common_pb2.EXECUTION_STATUS_STOPPED,
    )
    wait_for(lambda: status_of(client, execution_id) in ended, what=f"{execution_id} to end")


WAIT = {"id": "gate", "type": "wait", "config": {"display": {"note": "hold"}}}


def emit_every_event_type(client: Client) -> tuple[set[str], list[str]]:
    """Runs workflows that log every event type; answers the batch ids and the run ids."""
    runs: list[str] = []
    # Branches taken and not taken, input and output.
    branching = {
        "name": "branching",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "condition", "config": {"expression": "input.go"}},
            {"id": "yes", "type": "transform", "config": {"output": {"n": "{{ input.n }}"}}},
            {"id": "no", "type": "transform", "config": {"output": "never"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "check"},
            {"from": "check", "to": "yes", "when": "true"},
            {"from": "check", "to": "no", "when": "false"},
            {"from": "yes", "to": "end"},
            {"from": "no", "to": "end"},
        ],
    }
    run = client.start(branching, input={"go": True, "n": 7})
    runs.append(run.id)
    finished(client, run.id)

    # Loops (node events with a for-each stack) and log lines.
    loop = linear(
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": "input.items"},
            "body": {
                "nodes": [
                    {"id": "say", "type": "log", "config": {"message": "item {{ item }}", "level": "warning"}}
                ],
                "edges": [],
            },
        },
        name="loop",
    )
    run = client.start(loop, input={"items": ["a", "b"]}, trace_logs=True)
    runs.append(run.id)
    finished(client, run.id)

    # A wait resumed with data, a timer, trace logs switched off, an operator's pause.
    waiting = linear(WAIT, {"id": "nap", "type": "delay", "config": {"seconds": 0.3}}, name="waiting")
    run = client.start(waiting)
    runs.append(run.id)
    client.executions.SetTraceLogs(execution_pb2.SetTraceLogsRequest(execution_id=run.id, enabled=True))
    client.approve(open_context(client, run.id), {"paid": True})
    client.pause_execution(run.id, reason="a look")
    wait_for(lambda: status_of(client, run.id) == common_pb2.EXECUTION_STATUS_PAUSED, what="the hold")
    client.resume_execution(run.id)
    finished(client, run.id)

    # A pause point that expires.
    expiring = linear(
        {"id": "gate", "type": "wait", "config": {"timeoutSeconds": 0.2, "onTimeout": "continue"}}
    )
    run = client.start(expiring)
    runs.append(run.id)
    finished(client, run.id)

    # A stopped run: its pause point cancelled, its node stopped.
    run = client.start(linear(WAIT, name="stopped"))
    runs.append(run.id)
    open_context(client, run.id)
    client.stop(run.id, reason="enough")
    finished(client, run.id)

    # Retries, then a failure that fails the run.
    failing = linear(
        {
            "id": "call",
            "type": "http",
            "config": {"url": f"http://127.0.0.1:{free_port()}/nothing", "timeoutSeconds": 2},
            "retry": {"maxAttempts": 2, "backoffSeconds": 0.1},
        },
        name="failing",
    )
    run = client.start(failing)
    runs.append(run.id)
    finished(client, run.id)

    # A stored workflow's life: created, updated, paused (a run queued meanwhile), secret rotated,
    # resumed, cancelled, deleted.
    workflow = client.create_workflow(linear(WAIT, name="stored"))
    client.workflows.UpdateWorkflow(
        workflow_pb2.UpdateWorkflowRequest(
            workflow_id=workflow.id, definition=workflow.definition, expected_version=workflow.version
        )
    )
    client.pause_workflow(workflow.id, reason="maintenance")
    run = client.start(workflow_id=workflow.id, input={"who": "queued"})
    runs.append(run.id)
    client.rotate_webhook_secret(workflow.id, overlap_seconds=60.5)
    client.resume_workflow(workflow.id)
    open_context(client, run.id)
    client.cancel_workflow(workflow.id, reason="retired")
    finished(client, run.id)
    client.workflows.DeleteWorkflow(workflow_pb2.DeleteWorkflowRequest(workflow_id=workflow.id))

    # Batches: one that completes (its runs queued for a slot), one stopped.
    quick = client.create_workflow(
        linear({"id": "t", "type": "transform", "config": {"output": 1}}, name="quick")
    )
    slow = client.create_workflow(linear(WAIT, name="slow"))
    done = client.start_batch(workflow_ids=[quick.id, quick.id], concurrency=1)
    wait_for(
        lambda: client.get_batch(done.batch_id).status == batch_resource_pb2.BATCH_STATUS_COMPLETED,
        what="the batch to complete",
    )
    stopped = client.start_batch(workflow_ids=[slow.id], concurrency=1)
    wait_for(lambda: client.get_batch(stopped.batch_id).running == 1, what="the batch's run to start")
    client.stop_batch(stopped.batch_id, reason="no time")
    for item in client.get_batch(stopped.batch_id).executions:
        finished(client, item.execution_id)
    return {done.batch_id, stopped.batch_id}, runs


def stored_rows(db: Path) -> dict[int, tuple[str, dict[str, Any]]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT sequence, type, payload FROM events").fetchall()
    return {int(seq): (str(kind), json.loads(payload) if payload else {}) for seq, kind, payload in rows}


def listed_events(client: Client) -> dict[int, event_pb2.Event]:
    events: dict[int, event_pb2.Event] = {}
    token = ""
    while True:
        page = client.events.ListEvents(event_pb2.ListEventsRequest(page_size=1000, page_token=token))
        events.update((event.sequence, event) for event in page.events)
        token = page.next_page_token
        if not token:
            return events


@pytest.fixture(scope="module")
def logged(db: Path, client: Client) -> Logged:
    _, runs = emit_every_event_type(client)
    stored, received = stored_rows(db), listed_events(client)
    # ClearBatches deletes the batches' own events: read them first, then log BATCHES_CLEARED.
    client.batches.ClearBatches(batch_pb2.ClearBatchesRequest())
    stored.update(stored_rows(db))
    received.update(listed_events(client))
    by_type: dict[str, list[tuple[dict[str, Any], event_pb2.Event]]] = {}
    for sequence, (kind, payload) in sorted(stored.items()):
        assert sequence in received, f"event {sequence} ({kind}) was not listed"
        by_type.setdefault(kind, []).append((payload, received[sequence]))
    return Logged(by_type, runs)


def comparable(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its proto-JSON objects (Batch, BatchItem) parsed, everything else as is."""
    return {
        key: json_format.ParseDict(value, MESSAGES[key]()) if key in MESSAGES else value
        for key, value in payload.items()
    }


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_payload_converts_with_no_key_lost(logged: Logged, event_type: str) -> None:
    pairs = logged.by_type.get(event_type)
    assert pairs, f"no workflow of this test logged {event_type}"
    field = event_convert.KEYS[event_type][0]
    for stored, event in pairs:
        assert event.WhichOneof("attributes") == field
        # Strictly: a stored key without a field raises.
        _, attributes = event_convert.attributes(event_type, stored, strict=True)
        assert attributes == getattr(event, field)
        assert convert.frames(stored.get("stack")) == list(event.stack)
        back = event_convert.payload(event)
        assert comparable(back) == comparable(stored), f"{event_type} #{event.sequence}"


def test_attributes_hold_typed_values(logged: Logged) -> None:
    """A few values checked by type, so the round trip cannot pass through a wrong mapping."""
    waiting = [event.node_waiting_attributes for _, event in logged.by_type["NODE_WAITING"]]
    assert any(a.pause_kind == common_pb2.PAUSE_REASON_WAIT and a.context_id for a in waiting)
    assert any(a.HasField("wake_time") and not a.context_id for a in waiting)
    stopped = logged.by_type["EXECUTION_STOPPED"][0][1].execution_stopped_attributes
    assert stopped.status == common_pb2.EXECUTION_STATUS_STOPPED
    assert stopped.previous_status in (
        common_pb2.EXECUTION_STATUS_PAUSED,
        common_pb2.EXECUTION_STATUS_RUNNING,
    )
    queued = {event.execution_queued_attributes.reason for _, event in logged.by_type["EXECUTION_QUEUED"]}
    assert queued == {event_pb2.QUEUE_REASON_BATCH, event_pb2.QUEUE_REASON_WORKFLOW_PAUSED}
    completed = [event.node_completed_attributes for _, event in logged.by_type["NODE_COMPLETED"]]
    assert any("true" in a.branches.labels for a in completed)
    assert any(not a.HasField("branches") for a in completed)
    logs = [event.node_log_attributes for _, event in logged.by_type["NODE_LOG"]]
    assert any(a.level == common_pb2.LOG_LEVEL_WARNING and a.message == "item a" for a in logs)
    looped = [event for _, event in logged.by_type["NODE_STARTED"] if event.node_id == "say"]
    assert [frame.index for event in looped for frame in event.stack] == [0, 1]
    rotated = logged.by_type["WORKFLOW_SECRET_ROTATED"][0][1].workflow_secret_rotated_attributes
    assert rotated.overlap == duration_pb2.Duration(seconds=60, nanos=500_000_000)
    paused = {event.execution_paused_attributes.reason for _, event in logged.by_type["EXECUTION_PAUSED"]}
    assert {common_pb2.PAUSE_REASON_WAIT, common_pb2.PAUSE_REASON_MANUAL} <= paused


def test_an_unknown_payload_key_is_not_dropped_silently(caplog: pytest.LogCaptureFixture) -> None:
    payload = {"nodeKey": "a", "nodeType": "log", "status": "running", "attempt": 1, "surprise": 1}
    with pytest.raises(event_convert.UnmappedPayloadKeys, match="surprise"):
        event_convert.attributes("NODE_STARTED", payload, strict=True)
    _, attributes = event_convert.attributes("NODE_STARTED", payload)
    assert attributes == event_pb2.NodeStartedAttributes(
        node_key="a", node_type="log", status=common_pb2.NODE_STATUS_RUNNING, attempt=1
    )
    assert "surprise" in caplog.text
    batch = {"batch": {"batchId": "batch_1", "totalWorkflows": 2, "renamed": 1}}
    with pytest.raises(json_format.ParseError):
        event_convert.attributes("BATCH_STARTED", batch, strict=True)
    _, started = event_convert.attributes("BATCH_STARTED", batch)  # what still fits is kept, and logged
    assert started == event_pb2.BatchStartedAttributes(
        batch=batch_resource_pb2.Batch(batch_id="batch_1", total_workflows=2)
    )
    assert "['batch']" in caplog.text


def test_sse_prints_the_stored_payloads(server: ServerThread, logged: Logged) -> None:
    """The HTTP face keeps its shape: each SSE event's `payload` is the stored payload, key for key."""
    stored = {event.sequence: payload for pairs in logged.by_type.values() for payload, event in pairs}
    seen = 0
    for execution_id in logged.runs:
        response = httpx.get(f"{server.http_url}/api/workflows/execution/{execution_id}/events", timeout=20)
        assert response.status_code == 200
        for block in response.text.split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "data" not in lines or lines.get("event") == "snapshot":
                continue
            data = json.loads(lines["data"])
            assert set(data) >= {"sequence", "type", "time", "payload"}
            assert not any(key.endswith("Attributes") for key in data)
            assert data["payload"] == stored[int(data["sequence"])], data["type"]
            seen += 1
    assert seen > 30
