"""Live updates over HTTP: the SSE stream of a run (resumed with Last-Event-ID, no gap, no duplicate),
and Socket.IO `execution-update`, `batch-update` and `node-execution` received by the real
`socket.io-client` package in Node (tests/node/live_client.mjs) from the real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from runctl.v1 import batch_pb2, batch_pb2_grpc, common_pb2, execution_pb2
from runctl_server.http.live import LiveUpdates, RunTracker
from runctl_server.http.runner_shapes import RunStatus
from runctl_server.store.records import LoggedEvent
from tests.engine_helpers import Client, linear
from tests.support import running_server, settings_for

E = execution_pb2
PAUSED = (common_pb2.EXECUTION_STATUS_PAUSED,)
NODE = shutil.which("node")
WATCHER = Path(__file__).parent / "node" / "live_client.mjs"
UPDATE_KEYS = {"executionId", "status", "currentNodeId", "pausedNodeId", "pauseReason"}
UPDATE_OPTIONAL = {"error", "batchId", "sequence"}
BATCH_UPDATE_KEYS = {"batchId", "status", "completed", "totalWorkflows", "running", "queued", "failed"}


def two_steps() -> dict[str, Any]:
    return linear({"id": "w", "type": "wait"}, {"id": "note", "type": "log", "config": {"message": "hi"}})


@dataclass
class Env:
    http: httpx.Client
    client: Client
    batches: batch_pb2_grpc.BatchServiceStub
    root: Path
    url: str

    def paused(self, document: dict[str, Any] | None = None) -> str:
        execution_id = self.client.start(document or two_steps()).id
        self.client.wait(execution_id, until=PAUSED)
        return execution_id


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("workflows")
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with (
        running_server(settings_for(url, workflows_dirs=(root,))) as handle,
        Client(handle.grpc_target) as client,
        httpx.Client(base_url=handle.http_url, timeout=10) as http,
    ):
        yield Env(http, client, client.batches, root, handle.http_url)


# -- SSE ----------------------------------------------------------------------------------------------


@dataclass
class Frame:
    event: str = "message"
    data: str = ""
    ident: str | None = None
    comments: list[str] = field(default_factory=list)


def frames(response: httpx.Response) -> Iterator[Frame]:
    """SSE frames as the spec parses them; a frame holding only comments is yielded too."""
    current = Frame()
    for line in response.iter_lines():
        if line == "":
            if current.data or current.comments:
                yield current
            current = Frame()
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
            elif name == "event":
                current.event = value
            elif name == "id":
                current.ident = value


def read_events(response: httpx.Response, until: str | None = None) -> list[Frame]:
    """Event frames until one of type `until` (or the end of the stream)."""
    seen = []
    for frame in frames(response):
        if frame.data:
            seen.append(frame)
            if frame.event == until:
                break
    return seen


def test_sse_streams_a_run_and_resumes_after_the_last_event_id(env: Env) -> None:
    execution_id = env.paused()
    path = f"/api/workflows/execution/{execution_id}/events"
    with env.http.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        first = read_events(response, until="EXECUTION_PAUSED")
    assert first[0].event == "EXECUTION_STARTED" and first[-1].event == "EXECUTION_PAUSED"
    last_id = first[-1].ident
    assert last_id is not None

    continued = env.http.post("/api/workflows/execution/continue", json={"executionId": execution_id})
    assert continued.status_code == 200
    with env.http.stream("GET", path, headers={"Last-Event-ID": last_id}) as response:
        assert response.status_code == 200
        rest = read_events(response)  # the stream ends by itself after the terminal event
    assert rest[-1].event == "EXECUTION_COMPLETED"

    history = list(env.client.history(execution_id))
    ids = [int(frame.ident or 0) for frame in first + rest]
    assert ids == [event.sequence for event in history]  # no gap, no duplicate, in order
    for frame, event in zip(first + rest, history, strict=True):
        data = json.loads(frame.data)
        assert data["sequence"] == str(event.sequence) and data["executionId"] == execution_id
        assert data["type"] == f"EVENT_TYPE_{frame.event}"
    assert {"NODE_STARTED", "NODE_COMPLETED", "EXECUTION_RESUMED"} <= {frame.event for frame in rest}

    finished = env.http.get(path, headers={"Last-Event-ID": str(ids[-1])})
    assert finished.status_code == 204  # EventSource stops reconnecting
    with env.http.stream("GET", path) as response:  # a finished run replays from its start and ends
        assert [int(frame.ident or 0) for frame in read_events(response)] == ids
    with env.http.stream("GET", path, headers={"Last-Event-ID": str(ids[-3])}) as response:
        assert [int(frame.ident or 0) for frame in read_events(response)] == ids[-2:]


def test_sse_sends_heartbeats_while_the_run_waits(env: Env) -> None:
    execution_id = env.paused()
    last = list(env.client.history(execution_id))[-1].sequence
    path = f"/api/workflows/execution/{execution_id}/events?heartbeat=1"
    started = time.monotonic()
    with env.http.stream("GET", path, headers={"Last-Event-ID": str(last)}) as response:
        frame = next(frames(response))
    assert frame.comments and frame.comments[0].startswith("heartbeat") and not frame.data
    assert time.monotonic() - started < 5
    env.http.post("/api/workflows/execution/stop", json={"executionId": execution_id})


def test_sse_errors(env: Env) -> None:
    missing = env.http.get("/api/workflows/execution/exec-missing/events")
    assert missing.status_code == 404
    assert missing.json()["success"] is False and "exec-missing" in missing.json()["message"]
    execution_id = env.paused()
    path = f"/api/workflows/execution/{execution_id}/events"
    for bad in ("abc", "-1", "1.5"):
        response = env.http.get(path, headers={"Last-Event-ID": bad})
        assert response.status_code == 400 and "Last-Event-ID" in response.text
    for bad in ("0", "x", "301"):
        assert env.http.get(f"{path}?heartbeat={bad}").status_code == 400
    env.http.post("/api/workflows/execution/stop", json={"executionId": execution_id})


# -- Socket.IO through the real socket.io-client ------------------------------------------------------


class Watcher:
    """tests/node/live_client.mjs in a Node process: started, ready (connected and subscribed), done."""

    def __init__(self, options: dict[str, Any]) -> None:
        assert NODE is not None
        self.process = subprocess.Popen(
            [NODE, str(WATCHER), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=WATCHER.parent,
        )

    def ready(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            _out, err = self.process.communicate(timeout=5)
            raise AssertionError(f"the Node watcher stopped before it was ready: {err}")
        ready = json.loads(line)
        assert ready.get("ready") is True, ready
        return dict(ready)

    def result(self) -> list[dict[str, Any]]:
        # Read through the same buffered pipe as ready(): communicate() would miss what it buffered.
        assert self.process.stdout is not None and self.process.stderr is not None
        self.process.wait(timeout=30)
        out, err = self.process.stdout.read(), self.process.stderr.read()
        report = json.loads(out.strip().splitlines()[-1])
        assert self.process.returncode == 0, (report, err)
        return list(report["events"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=5)


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    if NODE is None:
        pytest.skip("node is not installed")
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.close()


def watch(watchers: list[Watcher], env: Env, **options: Any) -> Watcher:
    watcher = Watcher({"url": env.url, "timeoutMs": 20_000, **options})
    watchers.append(watcher)
    return watcher


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event["data"] for event in events if event["name"] == name]


def assert_update_shape(update: dict[str, Any]) -> None:
    assert UPDATE_KEYS <= set(update) <= UPDATE_KEYS | UPDATE_OPTIONAL, update
    assert update["status"] in {"idle", "running", "completed", "error", "stopped"}


def test_socketio_run_updates_for_a_subscriber_and_for_everyone(env: Env, watchers: list[Watcher]) -> None:
    execution_id = env.paused()
    until = {"event": "execution-update", "status": "completed", "key": "executionId", "value": execution_id}
    one = watch(
        watchers,
        env,
        subscribe={"executionId": execution_id},
        probe={"executionId": "exec-nope"},
        until=until,
    )
    everything = watch(watchers, env, transports=["websocket"], until=until)
    ready = one.ready()
    assert ready["ack"] == {"success": True, "executionId": execution_id}
    assert ready["probe"]["success"] is False and "exec-nope" in ready["probe"]["message"]
    assert everything.ready()["transport"] == "websocket"
    other = env.paused()  # not this watcher's run

    assert (
        env.http.post("/api/workflows/execution/continue", json={"executionId": execution_id}).status_code
        == 200
    )
    events = one.result()
    updates = named(events, "execution-update")
    for update in updates:
        assert_update_shape(update)
    assert updates[0] == {  # pushed at subscription: the run's state then
        "executionId": execution_id,
        "status": "running",
        "currentNodeId": "w",
        "pausedNodeId": "w",
        "pauseReason": "wait-pause",
    }
    assert updates[-1]["status"] == "completed" and updates[-1]["currentNodeId"] is None
    assert updates[-1]["pausedNodeId"] is None and updates[-1]["pauseReason"] is None
    assert "running" in [u["status"] for u in updates[1:-1]]
    assert {u["currentNodeId"] for u in updates[1:]} >= {"note", "end"}
    sequences = [u["sequence"] for u in updates[1:]]
    assert sequences == sorted(sequences)
    nodes = named(events, "node-execution")
    for node in nodes:
        assert set(node) == {"executionId", "nodeId", "nodeType", "status", "sequence"}
    assert {(n["nodeId"], n["nodeType"], n["status"]) for n in nodes} >= {
        ("w", "wait", "completed"),
        ("note", "log", "running"),
        ("note", "log", "completed"),
        ("end", "end", "completed"),
    }
    assert {event["data"]["executionId"] for event in events} == {execution_id}
    assert named(events, "batch-update") == []

    seen_by_all = everything.result()
    mine = [e for e in seen_by_all if e["data"].get("executionId") == execution_id]
    assert [e["name"] for e in mine] == [e["name"] for e in events[1:]]  # all but the subscription push
    env.http.post("/api/workflows/execution/stop", json={"executionId": other})


def test_socketio_batch_updates(env: Env, watchers: list[Watcher]) -> None:
    folder = f"sample-{uuid.uuid4().hex[:8]}"
    (env.root / folder).mkdir()
    for name in ("workflow1.json", "workflow2.json"):
        (env.root / folder / name).write_text(json.dumps(linear({"id": "w", "type": "wait"})))
    batch = env.batches.StartBatch(
        batch_pb2.StartBatchRequest(folder_path=folder, concurrency=2), timeout=20
    ).batch
    run_ids = [item.execution_id for item in batch.executions]
    for execution_id in run_ids:
        env.client.wait(execution_id, until=PAUSED)
    until = {"event": "batch-update", "status": "completed", "key": "batchId", "value": batch.batch_id}
    watcher = watch(
        watchers, env, subscribe={"batchId": batch.batch_id}, transports=["websocket"], until=until
    )
    assert watcher.ready()["ack"] == {"success": True, "batchId": batch.batch_id}

    for execution_id in run_ids:
        continued = env.http.post("/api/workflows/execution/continue", json={"executionId": execution_id})
        assert continued.status_code == 200
    events = watcher.result()
    progress = named(events, "batch-update")
    for update in progress:
        assert set(update) == BATCH_UPDATE_KEYS and update["batchId"] == batch.batch_id
        assert update["totalWorkflows"] == 2
    assert progress[0] == {
        "batchId": batch.batch_id,
        "status": "running",
        "completed": 0,
        "totalWorkflows": 2,
        "running": 2,
        "queued": 0,
        "failed": 0,
    }
    assert progress[-1] == {**progress[0], "status": "completed", "completed": 2, "running": 0}
    assert [u["completed"] for u in progress] == sorted(u["completed"] for u in progress)
    updates = named(events, "execution-update")
    for update in updates:
        assert_update_shape(update)
        assert update["batchId"] == batch.batch_id
    assert {u["executionId"] for u in updates if u["status"] == "completed"} == set(run_ids)
    nodes = named(events, "node-execution")
    assert {n["executionId"] for n in nodes} == set(run_ids)
    assert all(n["batchId"] == batch.batch_id for n in nodes)
    assert {(n["nodeId"], n["status"]) for n in nodes} >= {("w", "completed"), ("end", "completed")}


def test_socketio_refuses_unknown_subscriptions(env: Env, watchers: list[Watcher]) -> None:
    execution_id = env.client.run(linear()).id
    until = {"event": "execution-update", "status": "completed"}
    watcher = watch(
        watchers, env, probe={"batchId": "batch-nope"}, subscribe={"executionId": execution_id}, until=until
    )
    ready = watcher.ready()
    assert ready["probe"] == {
        "success": False,
        "message": ready["probe"]["message"],
        "error": ready["probe"]["message"],
        "details": ready["probe"]["details"],
    }
    assert "batch-nope" in ready["probe"]["message"]
    # a finished run: the subscription's push is its final state, and that ends the watcher
    (update,) = named(watcher.result(), "execution-update")
    assert update["status"] == "completed" and update["executionId"] == execution_id


def test_socketio_handshake_origins(env: Env) -> None:
    """Pages of this machine (any port) and non-browser clients may connect; other sites may not."""
    path = "/socket.io/?EIO=4&transport=polling"
    assert env.http.get(path).status_code == 200
    local = env.http.get(path, headers={"Origin": "http://localhost:5173"})
    assert local.status_code == 200
    assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert env.http.get(path, headers={"Origin": "http://127.0.0.1:8080"}).status_code == 200
    assert env.http.get(path, headers={"Origin": "https://evil.example"}).status_code == 400
    assert env.http.get("/healthz").json()["status"] == "SERVING"  # the other routes are untouched


async def test_the_run_tracker_loads_runs_met_mid_life_and_stays_bounded() -> None:
    loaded: list[str] = []

    async def load(execution_id: str) -> RunStatus | None:
        loaded.append(execution_id)
        if execution_id == "gone":
            return None
        return RunStatus(execution_id=execution_id, status=common_pb2.EXECUTION_STATUS_PAUSED, batch_id="b1")

    live = LiveUpdates(load)
    live.tracker = RunTracker(load, capacity=2)

    def row(kind: str, execution_id: str, node_id: str = "", **payload: Any) -> LoggedEvent:
        return LoggedEvent(
            type=kind,
            workspace_id="ws",
            sequence=len(loaded) + 1,
            execution_id=execution_id,
            node_id=node_id or None,
            time=1.0,
            payload_json=json.dumps({"nodeType": "log", **payload}),
        )

    resumed = await live.updates(row("EXECUTION_RESUMED", "old"))
    assert loaded == ["old"] and [u.name for u in resumed] == ["execution-update"]
    assert resumed[0].data["status"] == "running" and resumed[0].batch_id == "b1"
    started = await live.updates(row("NODE_STARTED", "gone", "n1"))
    assert [u.name for u in started] == ["node-execution", "execution-update"]
    assert started[1].data["status"] == "running" and started[1].data["currentNodeId"] == "n1"
    assert await live.updates(row("NODE_LOG", "gone", "n1")) == []
    paused = await live.updates(row("EXECUTION_PAUSED", "gone", "n2", reason="approval"))
    assert (paused[0].data["pausedNodeId"], paused[0].data["pauseReason"]) == ("n2", "wait-pause")
    await live.updates(row("EXECUTION_QUEUED", "new"))  # a new run is never loaded
    assert loaded == ["old", "gone"] and len(live.tracker) == 2  # "old" fell out
    failed = await live.updates(row("EXECUTION_FAILED", "new", error={"message": "kaboom"}))
    assert failed[0].data["error"] == "kaboom" and failed[0].data["status"] == "error"
    assert live.tracker.current("new") is None  # forgotten once finished
