"""The typed Python client (runctl.client, runctl.aio) against the real server, and its watch iterators.

Reconnects are tested two ways: through a TCP proxy in front of the real server whose connections the
test cuts mid-stream, and against a scripted fake ExecutionService that fails streams on cue.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from runctl.aio import AsyncClient
from runctl.client import Client
from runctl.connection import RetryPolicy
from runctl.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    RpcFailure,
    UnavailableError,
)
from runctl.messages import ACTIVE_EXECUTION_STATUSES, WorkflowFileError, to_dict
from runctl.v1 import common_pb2, event_pb2, execution_pb2
from tests.engine_helpers import linear
from tests.support import ServerThread, free_port, running_server, settings_for, wait_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
FAST = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
HELLO = linear(
    {"id": "greet", "type": "transform", "config": {"output": "Hello, {{ input.name }}!"}}, name="hi"
)
WAITS = linear({"id": "confirm", "type": "wait"}, name="waits")


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flows")
    (root / "three").mkdir()
    for index in range(3):
        (root / "three" / f"flow-{index}.json").write_text(json.dumps({**HELLO, "name": f"flow {index}"}))
    (root / "slow").mkdir()
    for index in range(2):
        nap = linear({"id": "nap", "type": "delay", "config": {"seconds": 0.3}}, name=f"nap {index}")
        (root / "slow" / f"nap-{index}.json").write_text(json.dumps(nap))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, flows: Path) -> Iterator[ServerThread]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with running_server(settings_for(url, workflows_dirs=(flows,))) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target, api_key="test-key", watch_retry=FAST) as runctl:
        yield runctl


def event_names(events: Any) -> list[str]:
    return [event_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_") for e in events]


# -- unary calls ------------------------------------------------------------------------------------


def test_start_from_a_file_a_dict_or_a_stored_workflow(client: Client, tmp_path: Path) -> None:
    json_file = tmp_path / "hello.json"
    json_file.write_text(json.dumps(HELLO))
    yaml_file = tmp_path / "hello.yaml"
    yaml_file.write_text(yaml.safe_dump(HELLO))
    stored = client.create_workflow(HELLO)
    assert stored.id and stored.webhook_secret and stored.version == 1

    started = [
        client.start(json_file, input={"name": "json"}),
        client.start(str(yaml_file), input={"name": "yaml"}),
        client.start(HELLO, input={"name": "dict"}),
        client.start(workflow_id=stored.id, input={"name": "stored"}),
    ]
    outputs = []
    for execution in started:
        done = client.wait(execution.id, timeout=20)
        assert done.status == COMPLETED
        outputs.append(to_dict(done.data)["nodes"]["greet"]["output"])
    assert outputs == ["Hello, json!", "Hello, yaml!", "Hello, dict!", "Hello, stored!"]
    assert client.get(started[3].id).workflow_id == stored.id


def test_status_latest_continue_and_active_runs(client: Client) -> None:
    stepped = linear({"id": "check", "type": "transform", "config": {"output": 1}, "breakpoint": True})
    older, newer = client.start(stepped), client.start(stepped)
    for run in (older, newer):
        client.wait(run.id, until={PAUSED}, timeout=20)
    status = client.status(newer.id)  # GetExecution, BASIC view
    assert (status.id, status.status, status.paused_node_id) == (newer.id, PAUSED, "check")
    assert not status.nodes and not status.HasField("definition")
    latest = client.latest(statuses=[PAUSED])
    assert latest is not None and latest.id == newer.id
    assert client.latest(statuses=[common_pb2.EXECUTION_STATUS_QUEUED]) is None
    active = client.list_executions(statuses=ACTIVE_EXECUTION_STATUSES, page_size=1000)
    assert {older.id, newer.id} <= {e.id for e in active.executions}
    assert client.continue_(newer.id).id == newer.id  # ControlPause with PAUSE_ACTION_CONTINUE
    assert client.wait(newer.id, timeout=20).status == COMPLETED
    assert client.get(older.id).status == PAUSED  # only the named run went on
    with pytest.raises(InvalidArgumentError) as no_id:
        client.stop("")
    assert [v.field for v in no_id.value.field_violations] == ["execution_id"]
    client.stop(older.id)


def test_one_source_only_and_bad_files_are_refused_locally(client: Client, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.start(HELLO, workflow_id="wf_x")
    with pytest.raises(WorkflowFileError, match="no such file"):
        client.start(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(WorkflowFileError, match="must be an object"):
        client.start(tmp_path / "list.json")
    with pytest.raises(WorkflowFileError, match="not a workflow document"):
        client.start({"name": "x", "nodes": [{"id": "a", "colour": "red"}]})


def test_a_request_id_makes_start_idempotent(client: Client) -> None:
    first = client.start(HELLO, request_id="client-test-1")
    again = client.start(HELLO, request_id="client-test-1")
    assert first.id == again.id
    assert client.start(HELLO).id != client.start(HELLO).id  # fresh ids when none is given


def test_errors_are_typed_with_their_details(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.get("exec_missing")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert isinstance(missing.value, grpc.RpcError)  # code that catches grpc errors keeps working
    assert missing.value.reason and "exec_missing" in missing.value.details()
    # The trailers are kept: the google.rpc.Status reads back from the error as from grpc's own.
    status = rpc_status.from_call(missing.value)
    assert status is not None and status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert any(detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) for detail in status.details)

    bad = {**HELLO, "nodes": [*HELLO["nodes"], {"id": "get", "type": "http", "config": {"url": "nope"}}]}
    with pytest.raises(InvalidArgumentError) as invalid:
        client.start(bad)
    assert any(v.field.endswith("config.url") for v in invalid.value.field_violations)

    finished = client.wait(client.start(HELLO).id, timeout=20)
    with pytest.raises(FailedPreconditionError):
        client.continue_(finished.id)


def test_approve_and_resume_node(client: Client) -> None:
    approval = linear(
        {
            "id": "ask",
            "type": "approval",
            "config": {
                "title": "OK?",
                "formFields": [{"name": "approved", "type": "boolean", "required": True}],
            },
        }
    )
    run = client.start(approval)
    paused = client.wait(run.id, until={PAUSED}, timeout=20)
    context_id = paused.pause_points[0].context_id
    with pytest.raises(InvalidArgumentError) as wrong:
        client.approve(context_id, {"approved": "yes"})
    assert wrong.value.field_violations
    reply = client.approve(context_id, {"approved": True}, actor="ada")
    assert reply.action == execution_pb2.RESUME_ACTION_RESUMED
    again = client.approve(context_id, {"approved": True})
    assert again.action == execution_pb2.RESUME_ACTION_SKIPPED and again.reason
    assert client.wait(run.id, timeout=20).status == COMPLETED

    stored = client.create_workflow(WAITS)
    waiting = client.start(workflow_id=stored.id)
    client.wait(waiting.id, until={PAUSED}, timeout=20)
    resumed = client.resume_node(waiting.id, "confirm", secret=stored.webhook_secret, data={"ok": True})
    assert resumed.action == execution_pb2.RESUME_ACTION_RESUMED
    done = client.wait(waiting.id, timeout=20)
    assert done.status == COMPLETED and to_dict(done.data)["nodes"]["confirm"]["output"] == {"ok": True}


def test_batches_and_listing(client: Client, flows: Path) -> None:
    batch = client.start_batch(str(flows / "three"), concurrency=2)
    assert batch.total_workflows == 3
    deadline = time.monotonic() + 20
    while client.get_batch(batch.batch_id).completed < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runs = client.list_executions(batch_id=batch.batch_id, statuses=[COMPLETED])
    assert len(runs.executions) == 3


def test_unavailable_is_retried_then_reported_clearly() -> None:
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    began = time.monotonic()
    with Client(target, retry=FAST) as nowhere, pytest.raises(UnavailableError) as caught:
        nowhere.get("exec_x")
    assert caught.value.attempts == FAST.max_attempts
    assert f"cannot reach runctl at {target}" in str(caught.value)
    assert time.monotonic() - began < 5


@dataclass(frozen=True)
class CountedRetries(RetryPolicy):
    """The client's own policy, noting each retry it is asked to wait before."""

    retries: list[int] = field(default_factory=list, compare=False)

    def backoff(self, retry: int) -> float:
        self.retries.append(retry)
        return super().backoff(retry)


def test_a_call_waits_out_a_server_that_comes_up(server: ServerThread) -> None:
    port = free_port()
    patient = CountedRetries(max_attempts=30, initial_backoff=0.05, max_backoff=0.1, jitter=0)
    opened: list[TcpProxy] = []

    def open_later() -> None:
        # Only once the call has failed and is waiting to retry: then the server comes up.
        wait_for(lambda: patient.retries, timeout=20, what="the call's first retry")
        opened.append(TcpProxy(server.grpc_target, port=port).start())

    opener = threading.Thread(target=open_later)
    opener.start()
    try:
        with Client(f"127.0.0.1:{port}", retry=patient) as late:
            reply = late.list_executions(page_size=1)
        assert patient.retries  # it failed first, then retried until the server was there
        assert opened, "answered before the server came up"
        assert reply.total_size >= 0
    finally:
        opener.join()
        for proxy in opened:
            proxy.close()


async def test_the_asyncio_client(server: ServerThread) -> None:
    async with AsyncClient(server.grpc_target, api_key="k") as runctl:
        run = await runctl.start(HELLO, input={"name": "aio"})
        done = await runctl.wait(run.id, poll_interval=0.05)
        assert done.status == COMPLETED
        with pytest.raises(NotFoundError):
            await runctl.get("exec_missing")
        events = [event async for event in runctl.history(run.id)]
        assert event_names(events)[-1] == "EXECUTION_COMPLETED"
        # wait takes a timeout, as the sync client's does (a run held at a wait node never finishes).
        held = await runctl.start(linear({"id": "hold", "type": "wait"}))
        with pytest.raises(TimeoutError, match=rf"{held.id} is still"):
            await runctl.wait(held.id, timeout=0.2, poll_interval=0.05)
        await runctl.stop(held.id)
    async with AsyncClient(f"127.0.0.1:{free_port()}", retry=FAST) as nowhere:
        with pytest.raises(UnavailableError) as caught:
            await nowhere.status("exec_anywhere")
        assert caught.value.attempts == FAST.max_attempts


# -- watches against the real server ----------------------------------------------------------------


def skip_if_unimplemented(error: RpcFailure) -> None:
    if error.code() == grpc.StatusCode.UNIMPLEMENTED:
        pytest.xfail(f"the server does not implement the watch RPCs yet: {error.message}")


def test_watch_execution_gives_a_snapshot_then_events_until_the_run_ends(client: Client) -> None:
    run = client.start(linear({"id": "nap", "type": "delay", "config": {"seconds": 0.3}}))
    kinds: list[str] = []
    events: list[event_pb2.Event] = []
    try:
        for message in client.watch_execution(run.id, heartbeat_interval=1):
            kinds.append(message.WhichOneof("kind") or "")
            events.extend(message.events.events)
    except RpcFailure as error:
        skip_if_unimplemented(error)
        raise
    assert kinds[0] == "snapshot"
    assert event_names(events)[-1] == "EXECUTION_COMPLETED"  # and the iterator ended by itself
    sequences = [e.sequence for e in events]
    assert sequences == sorted(set(sequences))


def test_watch_from_a_cursor_skips_the_snapshot(client: Client) -> None:
    done = client.wait(client.start(HELLO).id, timeout=20)
    logged = list(client.history(done.id))
    middle = logged[len(logged) // 2].sequence
    try:
        messages = list(client.watch_execution(done.id, after_sequence=middle))
    except RpcFailure as error:
        skip_if_unimplemented(error)
        raise
    assert all(m.WhichOneof("kind") != "snapshot" for m in messages)
    received = [e.sequence for m in messages for e in m.events.events]
    assert received == [e.sequence for e in logged if e.sequence > middle]


def test_a_watch_reconnects_from_its_cursor_when_the_connection_drops(
    client: Client, server: ServerThread
) -> None:
    stored = client.create_workflow(WAITS)
    run = client.start(workflow_id=stored.id)
    client.wait(run.id, until={PAUSED}, timeout=20)
    proxy = TcpProxy(server.grpc_target).start()
    try:
        with Client(
            proxy.target, watch_retry=RetryPolicy(max_attempts=20, initial_backoff=0.05)
        ) as via_proxy:
            watch = via_proxy.watch_execution(run.id, heartbeat_interval=1)
            try:
                first = next(watch)
            except RpcFailure as error:
                skip_if_unimplemented(error)
                raise
            assert first.WhichOneof("kind") == "snapshot"
            proxy.cut()  # the watcher's connection dies mid-stream
            client.resume_node(run.id, "confirm", secret=stored.webhook_secret, data={"late": True})
            events = [e for message in watch for e in message.events.events]
    finally:
        proxy.close()
    assert proxy.accepted >= 2  # it did connect again
    logged = [e for e in client.history(run.id) if e.sequence > first.cursor]
    assert [e.sequence for e in events] == [e.sequence for e in logged]  # nothing missed, nothing twice
    assert event_names(events)[-1] == "EXECUTION_COMPLETED"


def test_watch_batch_follows_a_batch_to_its_end(client: Client, flows: Path) -> None:
    batch = client.start_batch(str(flows / "slow"))
    try:
        messages = list(client.watch_batch(batch.batch_id, heartbeat_interval=1))
    except RpcFailure as error:
        skip_if_unimplemented(error)
        raise
    assert messages[0].WhichOneof("kind") == "snapshot"
    names = event_names(e for m in messages for e in m.events.events)
    assert names[-1] == "BATCH_COMPLETED"


async def test_async_stream_events_replays_then_follows(server: ServerThread) -> None:
    async with AsyncClient(server.grpc_target) as runctl:
        run = await runctl.start(linear({"id": "nap", "type": "delay", "config": {"seconds": 0.2}}))
        seen: list[str] = []
        try:
            async for message in runctl.stream_events(
                after_sequence=0, execution_id=run.id, heartbeat_interval=1
            ):
                seen.extend(event_names(message.events.events))
                if "EXECUTION_COMPLETED" in seen:
                    break  # the stream never ends by itself; leaving the loop cancels it
        except RpcFailure as error:
            skip_if_unimplemented(error)
            raise
        assert seen[0] in ("EXECUTION_QUEUED", "EXECUTION_STARTED") and seen[-1] == "EXECUTION_COMPLETED"


# -- reconnect rules, against a scripted fake server -------------------------------------------------


@dataclass
class Step:
    """One stream the fake server serves: these cursors as messages, then this ending."""

    cursors: list[int]
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""
    reason: str = ""


@dataclass
class FakeExecutions:
    """GetExecution and a scripted WatchExecution; every other method is UNIMPLEMENTED."""

    steps: list[Step] = field(default_factory=list)
    requests: list[int | None] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)

    def _record_key(self, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        self.api_keys.append(str(metadata.get("x-api-key", "")))

    def get(
        self, request: execution_pb2.GetExecutionRequest, context: grpc.ServicerContext
    ) -> execution_pb2.GetExecutionResponse:
        self._record_key(context)
        return execution_pb2.GetExecutionResponse(execution=execution_pb2.Execution(id=request.execution_id))

    def watch(
        self, request: execution_pb2.WatchExecutionRequest, context: grpc.ServicerContext
    ) -> Iterator[execution_pb2.WatchExecutionResponse]:
        self._record_key(context)
        self.requests.append(request.after_sequence if request.HasField("after_sequence") else None)
        step = self.steps.pop(0) if self.steps else Step([])
        for cursor in step.cursors:
            event = event_pb2.Event(sequence=cursor, type=event_pb2.EVENT_TYPE_NODE_STARTED)
            yield execution_pb2.WatchExecutionResponse(
                events=event_pb2.EventList(events=[event]), cursor=cursor
            )
        if step.code != grpc.StatusCode.OK:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason=step.reason, domain="runctl"))
            status = status_pb2.Status(
                code=getattr(code_pb2, step.code.name), message=step.message, details=[info]
            )
            context.abort_with_status(rpc_status.to_status(status))


@contextmanager
def fake_server(fake: FakeExecutions) -> Iterator[str]:
    E = execution_pb2
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "GetExecution": grpc.unary_unary_rpc_method_handler(
            fake.get,
            request_deserializer=E.GetExecutionRequest.FromString,
            response_serializer=E.GetExecutionResponse.SerializeToString,
        ),
        "WatchExecution": grpc.unary_stream_rpc_method_handler(
            fake.watch,
            request_deserializer=E.WatchExecutionRequest.FromString,
            response_serializer=E.WatchExecutionResponse.SerializeToString,
        ),
    }
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    grpc_server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("runctl.v1.ExecutionService", handlers),)
    )
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        grpc_server.stop(0)


def cursors_of(messages: Any) -> list[int]:
    return [message.cursor for message in messages]


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (grpc.StatusCode.UNAVAILABLE, "server shutting down", ""),
        (grpc.StatusCode.ABORTED, "fell behind", "WATCHER_TOO_SLOW"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "too slow: reconnect with after_sequence=2", ""),
    ],
)
def test_a_stream_cut_off_with_a_resume_status_reopens_after_the_last_cursor(
    code: grpc.StatusCode, message: str, reason: str
) -> None:
    fake = FakeExecutions(steps=[Step([1, 2], code, message, reason), Step([3, 4])])
    with fake_server(fake) as target, Client(target, api_key="sekret", watch_retry=FAST) as runctl:
        assert cursors_of(runctl.watch_execution("exec_fake")) == [1, 2, 3, 4]
        assert runctl.status("exec_fake").id == "exec_fake"
    assert fake.requests == [None, 2]
    assert fake.api_keys == ["sekret", "sekret", "sekret"]  # on streams and unary calls alike


def test_other_stream_errors_are_raised_at_once() -> None:
    fake = FakeExecutions(
        steps=[
            Step([1], grpc.StatusCode.NOT_FOUND, "no such run"),
            Step([], grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded"),
        ]
    )
    with fake_server(fake) as target, Client(target, watch_retry=FAST) as runctl:
        received: list[int] = []
        with pytest.raises(NotFoundError):
            for message in runctl.watch_execution("exec_fake"):
                received.append(message.cursor)
        assert received == [1]
        with pytest.raises(RpcFailure) as exhausted:
            list(runctl.watch_execution("exec_fake", after_sequence=7))
        assert exhausted.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.requests == [None, 7]


def test_reconnects_without_progress_are_bounded() -> None:
    failing = [Step([], grpc.StatusCode.UNAVAILABLE, "down") for _ in range(10)]
    fake = FakeExecutions(steps=[Step([5], grpc.StatusCode.UNAVAILABLE, "down"), *failing])
    with (
        fake_server(fake) as target,
        Client(target, watch_retry=FAST) as runctl,
        pytest.raises(UnavailableError),
    ):
        list(runctl.watch_execution("exec_fake"))
    # one stream with progress, then max_attempts streams in a row that fail at once, all from cursor 5
    assert fake.requests == [None] + [5] * FAST.max_attempts


async def test_async_watch_reconnects_too() -> None:
    fake = FakeExecutions(
        steps=[Step([1], grpc.StatusCode.ABORTED, "cut off", "WATCHER_TOO_SLOW"), Step([2, 3])]
    )
    with fake_server(fake) as target:
        async with AsyncClient(target, api_key="k", watch_retry=FAST) as runctl:
            received = [message.cursor async for message in runctl.watch_execution("exec_fake")]
    assert received == [1, 2, 3]
    assert fake.requests == [None, 1]
    assert fake.api_keys == ["k", "k"]


# -- a TCP proxy whose connections a test can cut ----------------------------------------------------


class TcpProxy:
    """Forwards loopback connections to `upstream`; `cut()` kills the open ones (the client sees
    UNAVAILABLE) while new connections are still accepted."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        host, _, upstream_port = upstream.rpartition(":")
        self.upstream = (host, int(upstream_port))
        self.listener = socket.create_server(("127.0.0.1", port))
        self.target = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.closed = False

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self.closed:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.accepted += 1
                self.sockets.extend((downstream, upstream))
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self.lock:
            doomed, self.sockets = self.sockets, []
        for sock in doomed:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.cut()
