"""The WorkerService over the real gRPC API, on SQLite and on PostgreSQL: workers written with the
generated stubs poll for tasks in threads, heartbeat, complete and fail them."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, worker_pb2, worker_pb2_grpc, workflow_pb2
from runctl_server.clock import ManualClock
from tests.engine_helpers import Client, linear, nodes_by_id, output
from tests.postgres import temporary_database
from tests.support import ServerThread, running_server, settings_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
ERROR = common_pb2.EXECUTION_STATUS_ERROR
RUNNING = common_pb2.EXECUTION_STATUS_RUNNING
# Idle poll streams send a heartbeat this often here (15 s in production) so the tests stay quick.
IDLE_SECONDS = 0.3

Handler = Callable[["Worker", worker_pb2.Task], None]


def to_value(data: Any) -> struct_pb2.Value:
    return json_format.ParseDict(data, struct_pb2.Value())


def plain(message: Any) -> Any:
    return json_format.MessageToDict(message)


def queue_name(prefix: str) -> str:
    """A queue of its own per test: the server is shared by the whole module."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Worker:
    """A worker process in miniature: a PollTasks stream read in a thread, handling each task."""

    def __init__(
        self,
        channel: grpc.Channel,
        queues: Sequence[str],
        handle: Handler | None = None,
        *,
        worker_id: str = "",
        max_in_flight: int = 0,
    ) -> None:
        self.stub = worker_pb2_grpc.WorkerServiceStub(channel)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.queues = list(queues)
        self.handle = handle
        self.max_in_flight = max_in_flight
        self.tasks: list[worker_pb2.Task] = []
        self.heartbeats: list[float] = []
        self.errors: list[BaseException] = []
        self.ready = threading.Event()
        self._call: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Worker:
        request = worker_pb2.PollTasksRequest(
            worker_id=self.worker_id, queues=self.queues, max_in_flight=self.max_in_flight
        )
        self._call = self.stub.PollTasks(request)
        self._thread = threading.Thread(target=self._run, name=self.worker_id, daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the poll stream did not open"
        return self

    def _run(self) -> None:
        try:
            for response in self._call:
                self.ready.set()
                if response.HasField("heartbeat"):
                    self.heartbeats.append(response.heartbeat.time.ToNanoseconds() / 1e9)
                    continue
                self.tasks.append(response.task)
                if self.handle is not None:
                    self.handle(self, response.task)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(exc)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.ready.set()

    def stop(self) -> None:
        """Close the stream, as a worker that goes away does."""
        if self._call is not None:
            self._call.cancel()
        if self._thread is not None:
            self._thread.join(10)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
        if kind is None and self.errors:
            raise self.errors[0]

    def wait_tasks(self, count: int, timeout: float = 15) -> list[worker_pb2.Task]:
        deadline = time.monotonic() + timeout
        while len(self.tasks) < count:
            if self.errors:
                raise self.errors[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.worker_id} received {len(self.tasks)} of {count} tasks")
            time.sleep(0.02)
        return list(self.tasks)

    def complete(self, task: worker_pb2.Task, result: Any = None) -> None:
        request = worker_pb2.CompleteTaskRequest(task_id=task.task_id, worker_id=self.worker_id)
        if result is not None:
            request.output.CopyFrom(to_value(result))
        self.stub.CompleteTask(request, timeout=10)

    def fail(self, task: worker_pb2.Task, message: str, *, retryable: bool, code: str = "") -> None:
        request = worker_pb2.FailTaskRequest(
            task_id=task.task_id, worker_id=self.worker_id, message=message, retryable=retryable, code=code
        )
        self.stub.FailTask(request, timeout=10)

    def heartbeat(self, task: worker_pb2.Task, progress: dict[str, Any] | None = None) -> bool:
        request = worker_pb2.HeartbeatTaskRequest(task_id=task.task_id, worker_id=self.worker_id)
        if progress is not None:
            request.progress.update(progress)
        return bool(self.stub.HeartbeatTask(request, timeout=10).cancel_requested)


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def violations(error: grpc.RpcError) -> set[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    fields: set[str] = set()
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields.update(v.field for v in bad_request.field_violations)
    return fields


def wait_until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


@dataclass
class Env:
    client: Client
    channel: grpc.Channel
    server: ServerThread


def _quick_idle(handle: ServerThread) -> None:
    engine = handle.server.engine
    assert engine is not None
    engine.tasks.idle_seconds = IDLE_SECONDS


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A real server per database kind, reached through the generated stubs."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
        with (
            running_server(settings_for(url)) as handle,
            Client(handle.grpc_target) as client,
        ):
            _quick_idle(handle)
            yield Env(client, client.channel, handle)
    else:
        with temporary_database() as url, running_server(settings_for(url)) as handle:
            _quick_idle(handle)
            with Client(handle.grpc_target) as client:
                yield Env(client, client.channel, handle)


@dataclass
class ClockedEnv(Env):
    clock: ManualClock


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def clocked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockedEnv]:
    """A real server whose leases go by a clock the test moves: lease expiry without waiting for it."""
    clock = ManualClock()
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
        else:
            url = stack.enter_context(temporary_database())
        handle = stack.enter_context(running_server(settings_for(url), clock=clock))
        _quick_idle(handle)
        client = stack.enter_context(Client(handle.grpc_target))
        yield ClockedEnv(client, client.channel, handle, clock)


def advance(clock: ManualClock, seconds: float) -> None:
    """Move the clock, then wait until everything it woke sleeps again: the lease sweeper has looked
    at the leases at the new time."""
    asleep = clock.sleepers
    clock.advance(seconds)
    wait_until(lambda: clock.sleepers >= asleep)


def test_worker_runs_a_custom_node_type_with_rendered_config(env: Env) -> None:
    queue = queue_name("browser")
    doc = linear(
        {"id": "nav", "type": "navigate", "queue": queue, "config": {"url": "{{ input.url }}", "waitMs": 500}}
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.nav.output }}"}
    page = {"title": "Example Domain", "links": 1, "ok": True}
    cancels: list[bool] = []

    def navigate(worker: Worker, task: worker_pb2.Task) -> None:
        cancels.append(worker.heartbeat(task, {"percent": 50}))
        worker.complete(task, page)

    with Worker(env.channel, [queue], navigate) as worker:
        execution_id = env.client.start(doc, input={"url": "https://example.com"}, trace_logs=True).id
        execution = env.client.wait(execution_id)
    assert execution.status == COMPLETED, execution.error
    assert output(nodes_by_id(execution)["nav"].output) == page
    assert output(execution.output) == page
    [task] = worker.tasks
    assert (task.execution_id, task.node_id, task.type, task.queue) == (
        execution_id,
        "nav",
        "navigate",
        queue,
    )
    assert plain(task.config) == {"url": "https://example.com", "waitMs": 500}
    assert plain(task.input) == {"url": "https://example.com"}
    assert task.attempt == 1
    assert task.idempotency_key == f"{execution_id}/nav"
    assert task.heartbeat_timeout.ToSeconds() == 30
    assert not task.HasField("deadline_time")
    assert not task.stack
    assert task.workflow_id == ""
    assert cancels == [False]
    # With trace logs on, the heartbeat's progress is a log line of the node.
    logs = [plain(entry) for entry in nodes_by_id(execution)["nav"].logs]
    assert any(entry.get("details") == {"percent": 50} for entry in logs), logs


def test_task_node_takes_its_queue_from_config_and_carries_the_workflow_id(env: Env) -> None:
    queue = queue_name("jobs")
    doc = linear({"id": "job", "type": "task", "config": {"queue": queue, "n": "{{ input.n }}"}}, name="job")
    workflow = env.client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(doc)), timeout=10
    ).workflow

    def job(worker: Worker, task: worker_pb2.Task) -> None:
        worker.complete(task, {"double": plain(task.config)["n"] * 2})

    with Worker(env.channel, [queue], job) as worker:
        reply = env.client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_id=workflow.id, input=_struct({"n": 21})), timeout=10
        )
        execution = env.client.wait(reply.execution.id)
    assert execution.status == COMPLETED, execution.error
    assert output(nodes_by_id(execution)["job"].output) == {"double": 42}
    [task] = worker.tasks
    assert task.type == "task"
    assert task.queue == queue
    assert plain(task.config) == {"n": 21}  # the queue is routing, not config
    assert task.workflow_id == workflow.id


def test_retryable_failure_runs_a_second_attempt(env: Env) -> None:
    queue = queue_name("flaky")
    doc = linear(
        {
            "id": "flaky",
            "type": "task",
            "queue": queue,
            "retry": {"maxAttempts": 2, "backoffSeconds": 0},
        }
    )

    def flaky(worker: Worker, task: worker_pb2.Task) -> None:
        if task.attempt == 1:
            worker.fail(task, "connection reset", retryable=True, code="NETWORK")
        else:
            worker.complete(task, {"attempt": task.attempt})

    with Worker(env.channel, [queue], flaky) as worker:
        execution = env.client.run(doc)
    assert execution.status == COMPLETED, execution.error
    node = nodes_by_id(execution)["flaky"]
    assert node.attempts == 2
    assert output(node.output) == {"attempt": 2}
    first, second = worker.tasks
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.task_id != second.task_id
    assert first.idempotency_key == second.idempotency_key


def test_non_retryable_failure_fails_the_run_with_the_workers_message(env: Env) -> None:
    queue = queue_name("strict")
    doc = linear({"id": "strict", "type": "task", "queue": queue, "retry": {"maxAttempts": 3}})

    def strict(worker: Worker, task: worker_pb2.Task) -> None:
        worker.fail(task, "page not found: /missing", retryable=False, code="NOT_FOUND_PAGE")

    with Worker(env.channel, [queue], strict) as worker:
        execution = env.client.run(doc)
    assert execution.status == ERROR
    assert (execution.error.message, execution.error.node_id) == ("page not found: /missing", "strict")
    node = nodes_by_id(execution)["strict"]
    assert (node.error.message, node.error.code) == ("page not found: /missing", "NOT_FOUND_PAGE")
    assert len(worker.tasks) == 1


def test_failure_without_a_code_is_task_failed(env: Env) -> None:
    queue = queue_name("plain-fail")
    with Worker(env.channel, [queue], lambda w, t: w.fail(t, "boom", retryable=False)):
        execution = env.client.run(linear({"id": "t", "type": "task", "queue": queue}))
    assert execution.status == ERROR
    assert nodes_by_id(execution)["t"].error.code == "TASK_FAILED"


def test_a_lease_holds_until_its_heartbeat_timeout_has_passed(clocked: ClockedEnv) -> None:
    queue = queue_name("holding")
    doc = linear({"id": "t", "type": "task", "queue": queue, "config": {"heartbeatTimeoutSeconds": 1}})
    with Worker(clocked.channel, [queue]) as worker:
        execution_id = clocked.client.start(doc).id
        [task] = worker.wait_tasks(1)
        # The sweeper has looked at the lease 0.9 s into it: the worker still holds the task.
        advance(clocked.clock, 0.9)
        worker.complete(task, "in time")
        execution = clocked.client.wait(execution_id)
    assert execution.status == COMPLETED, execution.error
    assert output(nodes_by_id(execution)["t"].output) == "in time"


def test_task_of_a_silent_worker_goes_to_another_worker(clocked: ClockedEnv) -> None:
    queue = queue_name("silent")
    doc = linear({"id": "t", "type": "task", "queue": queue, "config": {"heartbeatTimeoutSeconds": 1}})
    with Worker(clocked.channel, [queue]) as silent:
        execution_id = clocked.client.start(doc).id
        [lost] = silent.wait_tasks(1)
    # The silent worker's stream is closed and it never heartbeats: after the timeout it goes elsewhere.
    assert lost.heartbeat_timeout.ToSeconds() == 1

    def finish(worker: Worker, task: worker_pb2.Task) -> None:
        late = rpc_error(lambda: silent.complete(lost, "too late"))
        assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(late) == "TASK_NOT_LEASED"
        assert rpc_error(lambda: silent.heartbeat(lost)).code() == grpc.StatusCode.FAILED_PRECONDITION
        worker.complete(task, "second worker")

    with Worker(clocked.channel, [queue], finish) as rescuer:
        advance(clocked.clock, 0.9)
        assert rescuer.tasks == []
        advance(clocked.clock, 0.2)
        execution = clocked.client.wait(execution_id)
    assert execution.status == COMPLETED, execution.error
    assert output(nodes_by_id(execution)["t"].output) == "second worker"
    [again] = rescuer.tasks
    assert again.task_id == lost.task_id
    assert again.attempt == 2
    assert again.idempotency_key == lost.idempotency_key


def test_heartbeats_keep_the_lease(clocked: ClockedEnv) -> None:
    queue = queue_name("steady")
    doc = linear({"id": "t", "type": "task", "queue": queue, "config": {"heartbeatTimeoutSeconds": 1}})

    def steady(worker: Worker, task: worker_pb2.Task) -> None:
        for _ in range(8):  # 4.8 s of work, well past the 1 s timeout, kept alive by heartbeats
            assert worker.heartbeat(task) is False
            advance(clocked.clock, 0.6)
        worker.complete(task, "steady")

    with Worker(clocked.channel, [queue], steady) as worker, Worker(clocked.channel, [queue]) as other:
        execution = clocked.client.run(doc)
    assert execution.status == COMPLETED, execution.error
    assert len(worker.tasks) + len(other.tasks) == 1
    assert worker.tasks[0].attempt == 1


def test_two_pollers_get_every_task_exactly_once(env: Env) -> None:
    queue = queue_name("shared")
    doc = linear({"id": "t", "type": "task", "queue": queue, "config": {"n": "{{ input.n }}"}})
    lock = threading.Lock()
    seen: list[str] = []

    def work(worker: Worker, task: worker_pb2.Task) -> None:
        with lock:
            seen.append(task.task_id)
        worker.complete(task, {"by": worker.worker_id, "n": plain(task.config)["n"]})

    with (
        Worker(env.channel, [queue], work) as first,
        Worker(env.channel, [queue, queue_name("other")], work, max_in_flight=3) as second,
    ):
        ids = {env.client.start(doc, input={"n": n}).id: n for n in range(20)}
        executions = {execution_id: env.client.wait(execution_id) for execution_id in ids}
    assert all(e.status == COMPLETED for e in executions.values())
    assert len(seen) == 20
    assert len(set(seen)) == 20
    for execution_id, execution in executions.items():
        assert output(nodes_by_id(execution)["t"].output)["n"] == ids[execution_id]
    assert {t.execution_id for t in first.tasks + second.tasks} == set(ids)


def test_max_in_flight_limits_unfinished_tasks_per_stream(env: Env) -> None:
    queue = queue_name("limited")
    doc = linear({"id": "t", "type": "task", "queue": queue})
    with Worker(env.channel, [queue], max_in_flight=2) as worker:
        ids = [env.client.start(doc).id for _ in range(4)]
        held = worker.wait_tasks(2)
        time.sleep(0.6)  # a task not dispatched looks like one on its way: a short window is the only proof
        assert len(worker.tasks) == 2
        worker.complete(held[0], "done")
        worker.wait_tasks(3)
        time.sleep(0.3)  # as above
        assert len(worker.tasks) == 3
        for task in worker.tasks[1:]:
            worker.complete(task, "done")
        for task in worker.wait_tasks(4)[3:]:
            worker.complete(task, "done")
        executions = [env.client.wait(execution_id) for execution_id in ids]
    assert all(e.status == COMPLETED for e in executions)


def test_tasks_inside_a_loop_carry_the_stack(env: Env) -> None:
    queue = queue_name("loop")
    doc = linear(
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": "input.items", "concurrency": 2},
            "body": {
                "nodes": [{"id": "double", "type": "task", "queue": queue, "config": {"n": "{{ item }}"}}],
                "edges": [],
            },
        }
    )
    with Worker(env.channel, [queue], lambda w, t: w.complete(t, plain(t.config)["n"] * 2)) as worker:
        execution = env.client.run(doc, {"items": [1, 2, 3]})
    assert execution.status == COMPLETED, execution.error
    assert output(nodes_by_id(execution)["each"].output) == [2, 4, 6]
    frames = sorted((t.stack[0].index, t.stack[0].parent_node_id, t.stack[0].total) for t in worker.tasks)
    assert frames == [(0, "each", 3), (1, "each", 3), (2, "each", 3)]
    assert len({t.idempotency_key for t in worker.tasks}) == 3


def test_node_timeout_cancels_the_task(env: Env) -> None:
    queue = queue_name("slow")
    doc = linear(
        {
            "id": "t",
            "type": "task",
            "queue": queue,
            "timeoutSeconds": 1,
            "config": {"heartbeatTimeoutSeconds": 30},
        }
    )
    with Worker(env.channel, [queue]) as worker:
        execution_id = env.client.start(doc).id
        [task] = worker.wait_tasks(1)
        deadline = task.deadline_time.ToNanoseconds() / 1e9
        assert time.time() - 1 < deadline < time.time() + 2
        execution = env.client.wait(execution_id)
        assert execution.status == ERROR
        assert nodes_by_id(execution)["t"].error.code == "TIMEOUT"
        assert worker.heartbeat(task) is True
        late = rpc_error(lambda: worker.complete(task, "late"))
        assert late.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_task_of_a_failed_run_is_abandoned(env: Env) -> None:
    queue = queue_name("doomed")
    doc = {
        "name": "doomed",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "task", "queue": queue},
            {"id": "pause", "type": "delay", "config": {"seconds": 0.5}},
            {"id": "boom", "type": "fail", "config": {"message": "boom"}},
        ],
        "edges": [
            {"from": "start", "to": "t"},
            {"from": "start", "to": "pause"},
            {"from": "pause", "to": "boom"},
        ],
    }
    with Worker(env.channel, [queue]) as worker:
        execution_id = env.client.start(doc).id
        [task] = worker.wait_tasks(1)
        assert env.client.wait(execution_id).status == ERROR
        assert worker.heartbeat(task) is True
        assert rpc_error(lambda: worker.complete(task, "x")).code() == grpc.StatusCode.FAILED_PRECONDITION


def test_task_of_a_run_that_already_ended_is_not_dispatched(env: Env) -> None:
    queue = queue_name("too-late")
    doc = {
        "name": "ended",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "task", "queue": queue},
            {"id": "boom", "type": "fail", "config": {"message": "boom"}},
        ],
        "edges": [{"from": "start", "to": "t"}, {"from": "start", "to": "boom"}],
    }
    assert env.client.run(doc).status == ERROR
    with Worker(env.channel, [queue]) as worker:
        # Nothing the server reports says "no task for this worker": the window is the proof.
        time.sleep(1)
    assert worker.tasks == []


def test_error_codes(env: Env) -> None:
    stub = worker_pb2_grpc.WorkerServiceStub(env.channel)
    unknown = rpc_error(
        lambda: stub.CompleteTask(
            worker_pb2.CompleteTaskRequest(task_id="task_nope", worker_id="w"), timeout=10
        )
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert (
        rpc_error(
            lambda: stub.HeartbeatTask(
                worker_pb2.HeartbeatTaskRequest(task_id="task_nope", worker_id="w"), timeout=10
            )
        ).code()
        == grpc.StatusCode.NOT_FOUND
    )

    no_queues = rpc_error(
        lambda: list(stub.PollTasks(worker_pb2.PollTasksRequest(worker_id="w"), timeout=10))
    )
    assert no_queues.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "queues" in violations(no_queues)
    bad = rpc_error(
        lambda: list(stub.PollTasks(worker_pb2.PollTasksRequest(queues=["q"], max_in_flight=-1), timeout=10))
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"worker_id", "max_in_flight"} <= violations(bad)

    queue = queue_name("codes")
    with Worker(env.channel, [queue]) as worker:
        execution_id = env.client.start(linear({"id": "t", "type": "task", "queue": queue})).id
        [task] = worker.wait_tasks(1)
        stranger = worker_pb2.CompleteTaskRequest(task_id=task.task_id, worker_id="someone-else")
        wrong = rpc_error(lambda: stub.CompleteTask(stranger, timeout=10))
        assert wrong.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(wrong) == "TASK_NOT_LEASED"
        no_message = worker_pb2.FailTaskRequest(task_id=task.task_id, worker_id=worker.worker_id)
        assert (
            rpc_error(lambda: stub.FailTask(no_message, timeout=10)).code()
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        worker.complete(task, "once")
        worker.complete(task, "twice")  # a repeated completion succeeds without effect
        assert (
            rpc_error(lambda: worker.fail(task, "after all", retryable=False)).code()
            == grpc.StatusCode.FAILED_PRECONDITION
        )
        execution = env.client.wait(execution_id)
    assert execution.status == COMPLETED
    assert output(nodes_by_id(execution)["t"].output) == "once"


def test_idle_stream_gets_heartbeats(env: Env) -> None:
    with Worker(env.channel, [queue_name("quiet")]) as worker:
        wait_until(lambda: len(worker.heartbeats) >= 3, timeout=5)
    assert worker.tasks == []
    assert all(abs(stamp - time.time()) < 10 for stamp in worker.heartbeats)


def test_open_tasks_survive_a_restart(tmp_path: Path) -> None:
    """Pending tasks are dispatched after a restart; leased ones once their lease runs out."""
    settings = settings_for(f"sqlite:///{tmp_path / 'runctl.db'}")
    queue = queue_name("durable")
    doc = linear({"id": "t", "type": "task", "queue": queue, "config": {"heartbeatTimeoutSeconds": 30}})
    with (
        running_server(settings) as handle,
        Client(handle.grpc_target) as client,
        Worker(client.channel, [queue], max_in_flight=1) as first,
    ):
        leased_run = client.start(doc).id
        [leased] = first.wait_tasks(1)
        pending_run = client.start(doc).id
        time.sleep(0.3)  # max_in_flight holds the second task back: only a window can show it
        assert len(first.tasks) == 1
    # The restarted server's clock starts at the real time, within the 30 s lease granted before.
    clock = ManualClock()
    with (
        running_server(settings, clock=clock) as handle,
        Client(handle.grpc_target) as client,
        Worker(client.channel, [queue], lambda w, t: w.complete(t, t.attempt)) as second,
    ):
        pending = client.wait(pending_run)
        advance(clock, 1.0)
        assert client.get(leased_run).status == RUNNING
        assert [t.execution_id for t in second.tasks] == [pending_run]
        advance(clock, 30.0)
        runs = {pending_run: pending, leased_run: client.wait(leased_run)}
    assert all(e.status == COMPLETED for e in runs.values())
    assert output(nodes_by_id(runs[pending_run])["t"].output) == 1
    assert output(nodes_by_id(runs[leased_run])["t"].output) == 2  # its first delivery was lost
    assert any(t.task_id == leased.task_id and t.attempt == 2 for t in second.tasks)


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message
