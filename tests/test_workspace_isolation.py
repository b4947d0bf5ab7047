"""Workspace isolation, completely: every RPC of every runctl.v1 service and every HTTP route, with a key
of workspace beta, finds nothing of workspace alpha's and changes nothing of it.

- An id of alpha's (workflow, run, pause point, batch, task) answers beta exactly as an id that never
  existed does: NOT_FOUND / 404, the same message, reason and body once the ids are swapped out.
- Calls without ids (lists, stop all, clear, starts with alpha's request ids or workflow ids) neither
  show nor touch alpha's objects.
- Streams too: WatchExecution, WatchBatch, StreamEvents filters, PollTasks, the SSE route, Socket.IO.
- Alpha sees every one of its objects exactly as before, afterwards.

Completeness is asserted, not hoped for: the methods exercised are compared with the methods in the
runctl.v1 service descriptors and the routes exercised with the route table (`all_endpoints`), so an RPC
or a route added later without a case here fails this module.
"""

from __future__ import annotations

import json
import pkgutil
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, json_format
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import runctl.v1
from runctl.v1 import (
    batch_pb2,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    execution_pb2,
    pause_point_pb2,
    worker_pb2,
    workflow_pb2,
)
from runctl_server.http.app import all_endpoints
from runctl_server.http.approval_form import CONTEXT_FIELD, DECISION_FIELD
from runctl_server.http.routes.execution_object import hashid
from runctl_server.http.routing import Endpoint
from tests.engine_helpers import linear
from tests.workspaces import Keyed, keyed_server

E, W, B, P, V, K = execution_pb2, workflow_pb2, batch_pb2, pause_point_pb2, event_pb2, worker_pb2
PAUSED, COMPLETED, ERROR = (
    common_pb2.EXECUTION_STATUS_PAUSED,
    common_pb2.EXECUTION_STATUS_COMPLETED,
    common_pb2.EXECUTION_STATUS_ERROR,
)
FINISHED = (COMPLETED, ERROR, common_pb2.EXECUTION_STATUS_STOPPED)
ACTIVE = [
    common_pb2.EXECUTION_STATUS_QUEUED,
    common_pb2.EXECUTION_STATUS_RUNNING,
    common_pb2.EXECUTION_STATUS_PAUSED,
]
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ONE_SECOND = duration_pb2.Duration(seconds=1)
# Alpha created its first workflow, run and batch with this request id; beta uses it too.
SHARED_REQUEST_ID = "shared-request-id"
QUEUE = f"isolation-{secrets.token_hex(4)}"

APPROVAL = linear({"id": "ask", "type": "approval", "config": {"title": "Ship it?"}}, name="approval")
QUICK = linear({"id": "say", "type": "transform", "config": {"output": 1}}, name="quick")
WAITING = linear({"id": "w", "type": "wait"}, name="waiting")
TASK = linear(
    {"id": "job", "type": "task", "config": {"queue": QUEUE, "heartbeatTimeoutSeconds": 300}}, name="job"
)
STEPS = linear(
    *[{"id": f"t{i}", "type": "transform", "config": {"output": i}} for i in range(4)], name="steps"
)

# Methods that cannot name another workspace's object and so have no case here. None today: every
# runctl.v1 RPC takes an id, lists, or acts on "everything of mine", and all of those are checked.
# Add "Service/Method" with a comment saying why, should a method that truly cannot arrive.
METHODS_WITHOUT_CASES: frozenset[str] = frozenset()
# Likewise for HTTP routes, as (method, path template). None today.
ROUTES_WITHOUT_CASES: frozenset[tuple[str, str]] = frozenset()


def definition(document: Mapping[str, Any]) -> workflow_pb2.WorkflowDefinition:
    return json_format.ParseDict(dict(document), workflow_pb2.WorkflowDefinition())


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def text_of(message: Message) -> str:
    return json_format.MessageToJson(message)


# -- the services and routes there are ------------------------------------------------------------------


def runctl_services() -> dict[str, tuple[ServiceDescriptor, ModuleType]]:
    """Every service declared in a runctl.v1 *_pb2 module (new proto files included), with its stubs."""
    found: dict[str, tuple[ServiceDescriptor, ModuleType]] = {}
    for info in pkgutil.iter_modules(runctl.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = import_module(f"runctl.v1.{info.name}")
        for name, service in module.DESCRIPTOR.services_by_name.items():
            found[name] = (service, import_module(f"runctl.v1.{info.name}_grpc"))
    return found


SERVICES = runctl_services()
ALL_METHODS = frozenset(
    f"{name}/{m.name}" for name, (service, _) in SERVICES.items() for m in service.methods
)
ENDPOINTS = all_endpoints()


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)))


ROUTE_PATTERNS = [(endpoint, _pattern(endpoint.path)) for endpoint in ENDPOINTS]


def served_by(method: str, url: str) -> Endpoint:
    """The route that answers a request: the first of the table matching it, as Starlette picks."""
    path = httpx.URL(url).path
    for endpoint, pattern in ROUTE_PATTERNS:
        if endpoint.method == method and pattern.fullmatch(path):
            return endpoint
    raise AssertionError(f"no route serves {method} {path}")


def test_the_tables_are_what_the_server_serves() -> None:
    """The completeness checks below compare with these; they must not be empty or stale."""
    assert {"ExecutionService", "WorkflowService", "BatchService", "WorkerService"} <= set(SERVICES)
    assert len(ALL_METHODS) >= 37
    assert METHODS_WITHOUT_CASES <= ALL_METHODS
    assert len(ENDPOINTS) == len({(e.method, e.path) for e in ENDPOINTS}) >= 28
    assert {(e.method, e.path) for e in ENDPOINTS} >= ROUTES_WITHOUT_CASES
    assert served_by("GET", "/api/workflows/execution/status").handler.__name__ == "status_by_query"
    assert served_by("GET", "/api/workflows/execution/exec_1").handler.__name__ == "status_by_path"


# -- alpha's world ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    """One id of each kind: alpha's real ones, or made-up ones of the same shape that never existed."""

    flow: str
    run: str
    ctx: str
    batch: str
    task: str

    @property
    def hash(self) -> str:
        return hashid(self.run)

    def placeholders(self) -> dict[str, str]:
        # The run's hashid is another spelling of its id (GET /v1/executions/{hashid}).
        return {"<hash>": self.hash, **{f"<{k}>": str(v) for k, v in vars(self).items()}}

    def blind(self, text: str) -> str:
        for placeholder, value in self.placeholders().items():
            text = text.replace(value, placeholder)
        return text


def made_up() -> Ids:
    return Ids(*(f"{kind}_{secrets.token_hex(10)}" for kind in ("wf", "exec", "ctx", "batch", "task")))


@dataclass
class Alpha:
    """What alpha owns, made through the API before beta tries anything."""

    ids: Ids  # the approval workflow, its paused run, that run's pause point, a running batch, a task
    secret: str  # the approval workflow's webhook secret
    quick_flow: str
    task_flow: str
    task_run: str
    waiting_flow: str
    done_batch: str
    batch_runs: list[str] = field(default_factory=list)

    @property
    def workflows(self) -> list[str]:
        return [self.ids.flow, self.quick_flow, self.task_flow, self.waiting_flow]

    @property
    def runs(self) -> list[str]:
        """Runs that do not change while nobody acts on them (the task run's lease may)."""
        return [self.ids.run, *self.batch_runs]

    @property
    def batches(self) -> list[str]:
        return [self.ids.batch, self.done_batch]

    @property
    def every_id(self) -> set[str]:
        return {*self.workflows, *self.runs, *self.batches, self.ids.ctx, self.ids.task, self.task_run}


@dataclass
class Stubs:
    """The generated stub of every runctl.v1 service over one channel."""

    channel: grpc.Channel
    by_service: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.by_service = {
            name: getattr(stubs, f"{name}Stub")(self.channel) for name, (_, stubs) in SERVICES.items()
        }

    def method(self, full_name: str) -> Any:
        service, method = full_name.split("/")
        return getattr(self.by_service[service], method)


def _wait(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _execution(stubs: Stubs, meta: Any, execution_id: str) -> execution_pb2.Execution:
    reply = stubs.method("ExecutionService/GetExecution")(
        E.GetExecutionRequest(execution_id=execution_id), metadata=meta, timeout=10
    )
    return reply.execution  # type: ignore[no-any-return]


def _batch(stubs: Stubs, meta: Any, batch_id: str) -> batch_resource_pb2.Batch:
    reply = stubs.method("BatchService/GetBatch")(
        B.GetBatchRequest(batch_id=batch_id), metadata=meta, timeout=10
    )
    return reply.batch  # type: ignore[no-any-return]


def wait_status(stubs: Stubs, meta: Any, execution_id: str, statuses: tuple[int, ...]) -> None:
    _wait(lambda: _execution(stubs, meta, execution_id).status in statuses, f"{execution_id} in {statuses}")


def wait_batch_done(stubs: Stubs, meta: Any, batch_id: str) -> None:
    _wait(
        lambda: _batch(stubs, meta, batch_id).status == batch_resource_pb2.BATCH_STATUS_COMPLETED,
        f"{batch_id} done",
    )


def task_waiting(stubs: Stubs, meta: Any, execution_id: str) -> Callable[[], bool]:
    def check() -> bool:
        nodes = _execution(stubs, meta, execution_id).nodes
        return any(n.node_id == "job" and n.status == common_pb2.NODE_STATUS_RUNNING for n in nodes)

    return check


def poll_one(stubs: Stubs, meta: Any, worker_id: str) -> worker_pb2.Task:
    """The first task a worker polling QUEUE receives (it keeps the lease when the stream closes)."""
    stream = stubs.method("WorkerService/PollTasks")(
        K.PollTasksRequest(worker_id=worker_id, queues=[QUEUE]), metadata=meta, timeout=20
    )
    try:
        for message in stream:
            if message.HasField("task"):
                return message.task  # type: ignore[no-any-return]
    finally:
        stream.cancel()
    raise AssertionError("the poll stream ended without a task")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    with keyed_server(tmp_path_factory) as handle:
        yield handle


@pytest.fixture(scope="module")
def channel(keyed: Keyed) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(keyed.handle.grpc_target) as chan:
        yield chan


@pytest.fixture(scope="module")
def alpha(keyed: Keyed, channel: grpc.Channel) -> Alpha:
    stubs, meta = Stubs(channel), keyed.meta(keyed.alpha)

    def call(name: str, request: Message) -> Any:
        return stubs.method(name)(request, metadata=meta, timeout=20)

    def create(document: Mapping[str, Any], request_id: str = "") -> workflow_pb2.Workflow:
        request = W.CreateWorkflowRequest(definition=definition(document), request_id=request_id)
        return call("WorkflowService/CreateWorkflow", request).workflow  # type: ignore[no-any-return]

    approval = create(APPROVAL, SHARED_REQUEST_ID)
    quick, task_flow, waiting = create(QUICK), create(TASK), create(WAITING)
    run = call(
        "ExecutionService/StartExecution",
        E.StartExecutionRequest(workflow_id=approval.id, request_id=SHARED_REQUEST_ID),
    ).execution.id
    task_run = call("ExecutionService/StartExecution", E.StartExecutionRequest(workflow_id=task_flow.id))
    running = call(
        "BatchService/StartBatch",
        B.StartBatchRequest(workflow_ids=B.WorkflowIdList(ids=[approval.id]), request_id=SHARED_REQUEST_ID),
    ).batch
    done = call(
        "BatchService/StartBatch", B.StartBatchRequest(workflow_ids=B.WorkflowIdList(ids=[quick.id]))
    ).batch
    batch_runs = [item.execution_id for item in [*running.executions, *done.executions]]
    for execution_id in [run, running.executions[0].execution_id]:
        wait_status(stubs, meta, execution_id, (PAUSED,))
    wait_batch_done(stubs, meta, done.batch_id)
    _wait(task_waiting(stubs, meta, task_run.execution.id), "the task node to wait on its worker")
    points = call("PausePointService/ListPausePoints", P.ListPausePointsRequest(execution_id=run))
    # Alpha's worker takes the task: it stays leased to "alpha-worker" (for 300 s) while beta tries it.
    task_id = poll_one(stubs, meta, "alpha-worker").task_id
    return Alpha(
        ids=Ids(approval.id, run, points.pause_points[0].context_id, running.batch_id, task_id),
        secret=approval.webhook_secret,
        quick_flow=quick.id,
        task_flow=task_flow.id,
        task_run=task_run.execution.id,
        waiting_flow=waiting.id,
        done_batch=done.batch_id,
        batch_runs=batch_runs,
    )


def alpha_view(stubs: Stubs, keyed: Keyed, alpha: Alpha) -> dict[str, Any]:
    """Everything alpha can read of its objects: each one in full, and which of them its lists hold."""
    meta = keyed.meta(keyed.alpha)

    def call(name: str, request: Message) -> Any:
        return stubs.method(name)(request, metadata=meta, timeout=10)

    view: dict[str, Any] = {}
    for workflow_id in alpha.workflows:
        view[workflow_id] = to_dict(
            call("WorkflowService/GetWorkflow", W.GetWorkflowRequest(workflow_id=workflow_id))
        )
    for execution_id in alpha.runs:
        request = E.GetExecutionRequest(execution_id=execution_id, view=E.EXECUTION_VIEW_FULL)
        view[execution_id] = to_dict(call("ExecutionService/GetExecution", request))
        view[f"{execution_id} history"] = to_dict(
            call(
                "ExecutionService/GetExecutionHistory",
                E.GetExecutionHistoryRequest(execution_id=execution_id),
            )
        )
    for batch_id in alpha.batches:
        batch = to_dict(call("BatchService/GetBatch", B.GetBatchRequest(batch_id=batch_id)))
        batch["batch"].pop("duration", None)  # a running batch's duration grows by the second
        view[batch_id] = batch
    view[alpha.ids.ctx] = to_dict(
        call("PausePointService/GetPausePoint", P.GetPausePointRequest(context_id=alpha.ids.ctx))
    )
    view["paused executions"] = to_dict(
        call(
            "WorkflowService/ListPausedExecutions", W.ListPausedExecutionsRequest(workflow_id=alpha.ids.flow)
        )
    )
    listed = [
        call("ExecutionService/ListExecutions", E.ListExecutionsRequest(page_size=1000)).executions,
        call("WorkflowService/ListWorkflows", W.ListWorkflowsRequest(page_size=1000)).workflows,
    ]
    ids = [item.id for items in listed for item in items]
    ids += [b.batch_id for b in call("BatchService/ListBatches", B.ListBatchesRequest(page_size=100)).batches]
    points = call("PausePointService/ListPausePoints", P.ListPausePointsRequest(page_size=1000)).pause_points
    ids += [p.context_id for p in points]
    view["listed"] = sorted(set(ids) & alpha.every_id)
    return view


def assert_alpha_still_works(stubs: Stubs, keyed: Keyed, alpha: Alpha) -> None:
    """What a view cannot show: alpha's webhook secret still works (no rotation reached it)."""
    meta = keyed.meta(keyed.alpha)
    # The secret passes (then the made-up node is not found); a wrong one would be UNAUTHENTICATED.
    probe = E.ResumeNodeRequest(execution_id=alpha.ids.run, node_id="no-such-node", secret=alpha.secret)
    with pytest.raises(grpc.RpcError) as caught:
        stubs.method("ExecutionService/ResumeNode")(probe, metadata=meta, timeout=10)
    assert caught.value.code() == NOT_FOUND and "no-such-node" in str(caught.value.details())


# -- gRPC -------------------------------------------------------------------------------------------------


def fingerprint(error: grpc.RpcError, ids: Ids) -> str:
    """The whole answer of a failed call: code, message and the ErrorInfo of its rich status, with the
    ids it was asked about replaced by placeholders."""
    infos: list[Any] = []
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append([info.reason, info.domain, sorted(info.metadata.items())])
        else:
            infos.append(detail.type_url)
    return ids.blind(json.dumps([error.code().name, error.details(), infos]))


@dataclass
class Beta:
    """Beta's calls over gRPC; remembers which methods it exercised."""

    stubs: Stubs
    meta: Any
    exercised: set[str] = field(default_factory=set)

    def __call__(self, name: str, request: Message) -> Any:
        self.exercised.add(name)
        return self.stubs.method(name)(request, metadata=self.meta, timeout=20)

    def stream(self, name: str, request: Message, timeout: float = 20) -> Any:
        self.exercised.add(name)
        return self.stubs.method(name)(request, metadata=self.meta, timeout=timeout)

    def error(self, name: str, request: Message, *, streaming: bool = False) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            if streaming:
                next(iter(self.stream(name, request)))
            else:
                self(name, request)
        return caught.value


@dataclass(frozen=True)
class Case:
    """A call naming alpha's objects; `request` builds it from the ids of one side (alpha's or made up)."""

    method: str
    request: Callable[[Ids], Message]
    streaming: bool = False


def id_cases(alpha: Alpha, beta_flow: str) -> list[Case]:
    secret = alpha.secret
    ask, worker = "ask", "alpha-worker"
    again = definition(APPROVAL)
    cases = [
        # WorkflowService
        Case("WorkflowService/GetWorkflow", lambda i: W.GetWorkflowRequest(workflow_id=i.flow)),
        Case(
            "WorkflowService/UpdateWorkflow",
            lambda i: W.UpdateWorkflowRequest(workflow_id=i.flow, definition=again),
        ),
        Case("WorkflowService/DeleteWorkflow", lambda i: W.DeleteWorkflowRequest(workflow_id=i.flow)),
        Case("WorkflowService/PauseWorkflow", lambda i: W.PauseWorkflowRequest(workflow_id=i.flow)),
        Case("WorkflowService/ResumeWorkflow", lambda i: W.ResumeWorkflowRequest(workflow_id=i.flow)),
        Case("WorkflowService/CancelWorkflow", lambda i: W.CancelWorkflowRequest(workflow_id=i.flow)),
        Case(
            "WorkflowService/RotateWebhookSecret", lambda i: W.RotateWebhookSecretRequest(workflow_id=i.flow)
        ),
        Case(  # were it alpha's workflow, its current secret would stop working at once
            "WorkflowService/RotateWebhookSecret",
            lambda i: W.RotateWebhookSecretRequest(workflow_id=i.flow, overlap=duration_pb2.Duration()),
        ),
        Case(
            "WorkflowService/ListPausedExecutions",
            lambda i: W.ListPausedExecutionsRequest(workflow_id=i.flow),
        ),
        # ExecutionService
        Case("ExecutionService/StartExecution", lambda i: E.StartExecutionRequest(workflow_id=i.flow)),
        Case(
            "ExecutionService/StartExecution",
            lambda i: E.StartExecutionRequest(workflow_id=i.flow, workflow_version=1, request_id="x"),
        ),
        Case("ExecutionService/GetExecution", lambda i: E.GetExecutionRequest(execution_id=i.run)),
        Case(
            "ExecutionService/GetExecution",
            lambda i: E.GetExecutionRequest(execution_id=i.run, view=E.EXECUTION_VIEW_BASIC),
        ),
        Case("ExecutionService/StopExecution", lambda i: E.StopExecutionRequest(execution_id=i.run)),
        *[
            Case(
                "ExecutionService/ControlPause",
                lambda i, a=action: E.ControlPauseRequest(execution_id=i.run, action=a),  # type: ignore[misc]
            )
            for action in (
                E.PAUSE_ACTION_CONTINUE,
                E.PAUSE_ACTION_SKIP,
                E.PAUSE_ACTION_CONTINUE_WITHOUT_BREAKPOINT,
            )
        ],
        Case(
            "ExecutionService/SetTraceLogs", lambda i: E.SetTraceLogsRequest(execution_id=i.run, enabled=True)
        ),
        Case("ExecutionService/PauseExecution", lambda i: E.PauseExecutionRequest(execution_id=i.run)),
        Case("ExecutionService/ResumeExecution", lambda i: E.ResumeExecutionRequest(execution_id=i.run)),
        Case("ExecutionService/ResumePausePoint", lambda i: E.ResumePausePointRequest(context_id=i.ctx)),
        Case(
            "ExecutionService/ResumePausePoint",
            lambda i: E.ResumePausePointRequest(context_id=i.ctx, workflow_id=i.flow, execution_id=i.run),
        ),
        # With alpha's real secret: knowing it still does not make alpha's run beta's.
        Case(
            "ExecutionService/ResumeNode",
            lambda i: E.ResumeNodeRequest(execution_id=i.run, node_id=ask, secret=secret),
        ),
        Case("ExecutionService/ResumeNode", lambda i: E.ResumeNodeRequest(execution_id=i.run, node_id=ask)),
        Case(
            "ExecutionService/GetExecutionHistory", lambda i: E.GetExecutionHistoryRequest(execution_id=i.run)
        ),
        Case("ExecutionService/WatchExecution", lambda i: E.WatchExecutionRequest(execution_id=i.run), True),
        Case(  # resuming from a cursor takes another path to the run
            "ExecutionService/WatchExecution",
            lambda i: E.WatchExecutionRequest(execution_id=i.run, after_sequence=0),
            True,
        ),
        # PausePointService
        Case("PausePointService/GetPausePoint", lambda i: P.GetPausePointRequest(context_id=i.ctx)),
        # BatchService
        Case("BatchService/GetBatch", lambda i: B.GetBatchRequest(batch_id=i.batch)),
        Case("BatchService/StopBatch", lambda i: B.StopBatchRequest(batch_id=i.batch)),
        Case(
            "BatchService/StartBatch",
            lambda i: B.StartBatchRequest(workflow_ids=B.WorkflowIdList(ids=[i.flow])),
        ),
        Case(  # one of beta's own workflows with it does not help
            "BatchService/StartBatch",
            lambda i: B.StartBatchRequest(workflow_ids=B.WorkflowIdList(ids=[beta_flow, i.flow])),
        ),
        Case("BatchService/WatchBatch", lambda i: B.WatchBatchRequest(batch_id=i.batch), True),
        Case(
            "BatchService/WatchBatch", lambda i: B.WatchBatchRequest(batch_id=i.batch, after_sequence=0), True
        ),
        # WorkerService: alpha's task, even with the id of the worker holding it
        Case(
            "WorkerService/HeartbeatTask", lambda i: K.HeartbeatTaskRequest(task_id=i.task, worker_id=worker)
        ),
        Case("WorkerService/CompleteTask", lambda i: K.CompleteTaskRequest(task_id=i.task, worker_id=worker)),
        Case(
            "WorkerService/FailTask",
            lambda i: K.FailTaskRequest(task_id=i.task, worker_id=worker, message="no", retryable=True),
        ),
    ]
    return cases


def assert_alike(beta: Beta, case: Case, foreign: Ids, missing: Ids) -> None:
    mine = beta.error(case.method, case.request(foreign), streaming=case.streaming)
    never = beta.error(case.method, case.request(missing), streaming=case.streaming)
    request = text_of(case.request(foreign))
    assert mine.code() == NOT_FOUND, (case.method, request, mine.code(), mine.details())
    assert fingerprint(mine, foreign) == fingerprint(never, missing), (case.method, request)


def assert_none_of_alpha(alpha: Alpha, answer: Message | str, what: str) -> None:
    text = answer if isinstance(answer, str) else text_of(answer)
    shown = sorted(i for i in alpha.every_id if i in text)
    assert not shown, f"{what} shows alpha's {shown}"


def test_every_rpc_keeps_workspaces_apart(keyed: Keyed, channel: grpc.Channel, alpha: Alpha) -> None:
    stubs = Stubs(channel)
    beta = Beta(stubs, keyed.meta(keyed.beta))
    alpha_meta = keyed.meta(keyed.alpha)
    before = alpha_view(stubs, keyed, alpha)
    foreign, missing = alpha.ids, made_up()

    # Beta's own things, with the request ids alpha used: beta gets its own, never alpha's.
    created = beta(
        "WorkflowService/CreateWorkflow",
        W.CreateWorkflowRequest(definition=definition(QUICK), request_id=SHARED_REQUEST_ID),
    ).workflow
    beta_flow = created.id
    assert_none_of_alpha(alpha, created, "CreateWorkflow with alpha's request id")
    started = beta(
        "ExecutionService/StartExecution",
        E.StartExecutionRequest(workflow_id=beta_flow, request_id=SHARED_REQUEST_ID),
    ).execution
    assert_none_of_alpha(alpha, started, "StartExecution with alpha's request id")
    batch = beta(
        "BatchService/StartBatch",
        B.StartBatchRequest(workflow_ids=B.WorkflowIdList(ids=[beta_flow]), request_id=SHARED_REQUEST_ID),
    ).batch
    assert_none_of_alpha(alpha, batch, "StartBatch with alpha's request id")
    wait_status(stubs, beta.meta, started.id, FINISHED)
    wait_batch_done(stubs, beta.meta, batch.batch_id)

    # Every call naming one of alpha's objects answers as if it did not exist.
    for case in id_cases(alpha, beta_flow):
        assert_alike(beta, case, foreign, missing)

    # No gRPC call picks "the most recent" run (alpha has paused and active runs): an empty id is
    # refused before any run is looked at. The HTTP routes that do pick one are checked below.
    for name, request in [
        ("ExecutionService/StopExecution", E.StopExecutionRequest()),
        ("ExecutionService/ControlPause", E.ControlPauseRequest(action=E.PAUSE_ACTION_CONTINUE)),
        ("ExecutionService/SetTraceLogs", E.SetTraceLogsRequest(enabled=True)),
    ]:
        error = beta.error(name, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, error.details())

    # Lists, filtered by alpha's ids or not, hold nothing of alpha's.
    for name, request in [
        (
            "ExecutionService/ListExecutions",
            E.ListExecutionsRequest(page_size=1000, view=E.EXECUTION_VIEW_FULL),
        ),
        ("ExecutionService/ListExecutions", E.ListExecutionsRequest(statuses=ACTIVE)),
        ("WorkflowService/ListWorkflows", W.ListWorkflowsRequest(view=W.WORKFLOW_VIEW_FULL)),
        ("BatchService/ListBatches", B.ListBatchesRequest(page_size=100)),
        ("PausePointService/ListPausePoints", P.ListPausePointsRequest()),
        ("EventService/ListEvents", V.ListEventsRequest(page_size=1000)),
    ]:
        assert_none_of_alpha(alpha, beta(name, request), name)
    for ids in (foreign, missing):
        filtered = [
            ("ExecutionService/ListExecutions", E.ListExecutionsRequest(workflow_id=ids.flow)),
            ("ExecutionService/ListExecutions", E.ListExecutionsRequest(batch_id=ids.batch)),
            (
                "ExecutionService/ListExecutions",
                E.ListExecutionsRequest(statuses=ACTIVE, workflow_id=ids.flow),
            ),
            ("ExecutionService/ListExecutions", E.ListExecutionsRequest(statuses=ACTIVE, batch_id=ids.batch)),
            ("PausePointService/ListPausePoints", P.ListPausePointsRequest(execution_id=ids.run)),
            ("PausePointService/ListPausePoints", P.ListPausePointsRequest(workflow_id=ids.flow)),
            ("EventService/ListEvents", V.ListEventsRequest(execution_id=ids.run)),
            ("EventService/ListEvents", V.ListEventsRequest(workflow_id=ids.flow)),
            ("EventService/ListEvents", V.ListEventsRequest(batch_id=ids.batch)),
        ]
        for name, request in filtered:
            answer = to_dict(beta(name, request))
            answer.pop("headSequence", None)  # the log's head: the same for any filter
            assert answer == {}, (name, text_of(request), answer)

    # Acting on "everything" acts on beta's everything only.
    stopped = beta("ExecutionService/StopAllExecutions", E.StopAllExecutionsRequest())
    assert (stopped.running_stopped, stopped.queued_cancelled, list(stopped.batch_ids)) == (0, 0, []), (
        text_of(stopped)
    )
    cleared = beta("BatchService/ClearBatches", B.ClearBatchesRequest())
    assert (cleared.batches_deleted, list(cleared.skipped_batch_ids)) == (1, []), text_of(cleared)

    assert_streams_keep_apart(beta, stubs, alpha_meta, alpha, foreign, missing)
    assert_workers_keep_apart(beta, stubs, alpha_meta, alpha)

    assert beta.exercised == ALL_METHODS - METHODS_WITHOUT_CASES, (
        f"RPCs without an isolation case: {sorted(ALL_METHODS - METHODS_WITHOUT_CASES - beta.exercised)}"
    )
    assert alpha_view(stubs, keyed, alpha) == before
    assert_alpha_still_works(stubs, keyed, alpha)


def assert_streams_keep_apart(
    beta: Beta, stubs: Stubs, alpha_meta: Any, alpha: Alpha, foreign: Ids, missing: Ids
) -> None:
    """StreamEvents filtered by alpha's ids (from the start of the log, then live) sends beta nothing
    but heartbeats, while alpha's runs log events of that very workflow."""
    filters = [
        V.StreamEventsRequest(execution_id=foreign.run),
        V.StreamEventsRequest(workflow_id=alpha.quick_flow),
        V.StreamEventsRequest(batch_id=alpha.done_batch),
        V.StreamEventsRequest(batch_id=foreign.batch),
        V.StreamEventsRequest(execution_id=missing.run),
    ]
    streams = []
    for request in filters:
        request.after_sequence = 0
        request.heartbeat_interval.CopyFrom(ONE_SECOND)
        streams.append(beta.stream("EventService/StreamEvents", request, timeout=30))
    try:
        for stream in streams:
            assert next(stream).HasField("heartbeat")  # open: what follows is the log, then live
        run = stubs.method("ExecutionService/StartExecution")(
            E.StartExecutionRequest(workflow_id=alpha.quick_flow), metadata=alpha_meta, timeout=10
        ).execution.id
        wait_status(stubs, alpha_meta, run, FINISHED)
        head = _execution(stubs, alpha_meta, run).last_sequence
        for request, stream in zip(filters, streams, strict=True):
            for message in stream:  # until a heartbeat says the stream has passed alpha's run
                assert not message.HasField("events"), (text_of(request), text_of(message))
                if message.cursor >= head:
                    break
    finally:
        for stream in streams:
            stream.cancel()


def assert_workers_keep_apart(beta: Beta, stubs: Stubs, alpha_meta: Any, alpha: Alpha) -> None:
    """A task of alpha's waiting in a queue: beta's worker polling that queue gets a heartbeat, not the
    task; alpha's worker gets it. (Beta's calls on alpha's leased task are among the id cases.)"""
    run = stubs.method("ExecutionService/StartExecution")(
        E.StartExecutionRequest(workflow_id=alpha.task_flow), metadata=alpha_meta, timeout=10
    ).execution.id
    _wait(task_waiting(stubs, alpha_meta, run), "the second task to wait in its queue")
    stream = beta.stream(
        "WorkerService/PollTasks", K.PollTasksRequest(worker_id="beta-worker", queues=[QUEUE])
    )
    try:
        first = next(stream)
        assert first.HasField("heartbeat"), text_of(first)
    finally:
        stream.cancel()
    assert poll_one(stubs, alpha_meta, "alpha-worker").execution_id == run  # it was there to take
    # Alpha's first task is still leased to alpha's worker, after beta's calls on it.
    beat = stubs.method("WorkerService/HeartbeatTask")(
        K.HeartbeatTaskRequest(task_id=alpha.ids.task, worker_id="alpha-worker"),
        metadata=alpha_meta,
        timeout=10,
    )
    assert not beat.cancel_requested
    stop = E.StopExecutionRequest(execution_id=run)
    stubs.method("ExecutionService/StopExecution")(stop, metadata=alpha_meta, timeout=10)


# -- HTTP -------------------------------------------------------------------------------------------------


@dataclass
class BetaHttp:
    """Beta's HTTP requests; remembers which routes of the table served them."""

    http: httpx.Client
    exercised: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        endpoint = served_by(method, url)
        self.exercised.add((endpoint.method, endpoint.path))
        return self.http.request(method, url, **kwargs)


@dataclass(frozen=True)
class HttpCase:
    """A request naming alpha's objects, built from one side's ids: (url, httpx keyword arguments)."""

    method: str
    request: Callable[[Ids], tuple[str, dict[str, Any]]]
    status: int = 404


def http_cases(alpha: Alpha, beta_flow: str) -> list[HttpCase]:
    C = HttpCase
    secret = alpha.secret

    def run_body(i: Ids, **body: Any) -> dict[str, Any]:
        return {"json": {"executionId": i.run, **body}}

    return [
        # the paused executions API: the resume apiUrl, the approval page and its form post
        C("GET", lambda i: (f"/api/workflows/{i.flow}/paused", {})),
        C("POST", lambda i: (f"/api/resume/{i.flow}/{i.run}/{i.ctx}", {"json": {"approved": True}})),
        C("POST", lambda i: (f"/api/resume/-/{i.run}/{i.ctx}", {"json": {}})),
        C("GET", lambda i: (f"/resume/{i.flow}/{i.run}", {})),
        C(
            "POST",
            lambda i: (
                f"/resume/{i.flow}/{i.run}",
                {"data": {CONTEXT_FIELD: i.ctx, DECISION_FIELD: "approve"}},
            ),
        ),
        # the local runner API
        C("GET", lambda i: ("/api/workflows/execution/status", {"params": {"executionId": i.run}})),
        C("GET", lambda i: (f"/api/workflows/execution/{i.run}", {})),
        C("POST", lambda i: ("/api/workflows/execution/stop", run_body(i))),
        C("POST", lambda i: ("/api/workflows/execution/continue", run_body(i))),
        C("POST", lambda i: ("/api/workflows/execution/trace-logs", run_body(i, enabled=True))),
        *[
            C("POST", lambda i, a=action: ("/api/workflows/execution/pause-control", run_body(i, action=a)))  # type: ignore[misc]
            for action in ("continue", "stop", "skip", "continueWithoutBreakpoint")
        ],
        C("GET", lambda i: (f"/api/workflows/execution/batch/{i.batch}", {})),
        C("POST", lambda i: (f"/api/workflows/execution/batch/{i.batch}/stop", {})),
        C("GET", lambda i: (f"/api/workflows/execution/{i.run}/events", {})),
        C("GET", lambda i: (f"/api/workflows/execution/{i.run}/events", {"headers": {"last-event-id": "0"}})),
        # the execution object API: by id or hashid; the list filtered by alpha's ids is empty
        C("GET", lambda i: (f"/v1/executions/{i.run}", {})),
        C("GET", lambda i: (f"/v1/executions/{i.hash}", {})),
        C("GET", lambda i: ("/v1/executions", {"params": {"workflow_id": i.flow}}), 200),
        C("GET", lambda i: ("/v1/executions", {"params": {"batch_id": i.batch}}), 200),
        # the workflow pause API
        C("GET", lambda i: (f"/v1/workflows/{i.flow}", {})),
        C("POST", lambda i: (f"/v1/workflows/{i.flow}/pause", {"json": {"reason": "beta"}})),
        C("POST", lambda i: (f"/v1/workflows/{i.flow}/resume", {})),
        C("POST", lambda i: (f"/v1/workflows/{i.flow}/cancel", {"json": {"reason": "beta"}})),
        C("POST", lambda i: (f"/v1/workflows/{i.flow}/rotate-secret", {"json": {"overlapSeconds": 0}})),
        # the node resume API: with alpha's real webhook secret, still not beta's run
        C(
            "POST",
            lambda i: (f"/v1/runs/{i.run}/nodes/ask/resume", {"params": {"secret": secret}, "json": {}}),
        ),
        # implied: execute alpha's workflow, alone or in a batch
        C("POST", lambda i: ("/api/workflows/execute", {"json": {"workflowId": i.flow}})),
        C("POST", lambda i: ("/api/workflows/execute/batch", {"json": {"workflowIds": [i.flow]}})),
        C("POST", lambda i: ("/api/workflows/execute/batch", {"json": {"workflowIds": [beta_flow, i.flow]}})),
    ]


def assert_http_alike(beta: BetaHttp, case: HttpCase, foreign: Ids, missing: Ids) -> None:
    url, kwargs = case.request(foreign)
    never_url, never_kwargs = case.request(missing)
    mine = beta(case.method, url, **kwargs)
    never = beta(case.method, never_url, **never_kwargs)
    assert mine.status_code == never.status_code == case.status, (case.method, url, mine.text, never.text)
    assert foreign.blind(mine.text) == missing.blind(never.text), (case.method, url)


def test_every_http_route_keeps_workspaces_apart(keyed: Keyed, channel: grpc.Channel, alpha: Alpha) -> None:
    stubs = Stubs(channel)
    before = alpha_view(stubs, keyed, alpha)
    foreign, missing = alpha.ids, made_up()
    with httpx.Client(base_url=keyed.handle.http_url, timeout=20, headers={"x-api-key": keyed.beta}) as http:
        beta = BetaHttp(http)

        def none_of_alpha(reply: httpx.Response, status: int = 200) -> Any:
            assert reply.status_code == status, (reply.request.url, reply.text)
            assert_none_of_alpha(alpha, reply.text, f"{reply.request.method} {reply.request.url}")
            return reply.json()

        # Beta's own workflow, run and batch, with the request id alpha used for its own.
        shared = {"idempotency-key": SHARED_REQUEST_ID}
        created = beta("POST", "/v1/workflows", json=QUICK, headers=shared)
        beta_flow = none_of_alpha(created, created.status_code)["id"]
        assert created.status_code in (200, 201)
        execution = none_of_alpha(
            beta("POST", "/api/workflows/execute", json={"workflow": QUICK, "requestId": SHARED_REQUEST_ID})
        )
        body = {"workflowIds": [beta_flow], "requestId": SHARED_REQUEST_ID}
        batch = none_of_alpha(beta("POST", "/api/workflows/execute/batch", json=body))
        wait_status(stubs, keyed.meta(keyed.beta), execution["executionId"], FINISHED)
        wait_batch_done(stubs, keyed.meta(keyed.beta), batch["batchId"])

        for case in http_cases(alpha, beta_flow):
            assert_http_alike(beta, case, foreign, missing)

        # Without ids: the most recent run is beta's, and there is no active or paused one of beta's.
        none_of_alpha(beta("GET", "/api/workflows/execution/status"))
        assert none_of_alpha(beta("GET", "/api/workflows/executions/active")) == {
            "totalActive": 0,
            "executions": [],
        }
        for path, json_body in [
            ("/api/workflows/execution/stop", {}),
            ("/api/workflows/execution/continue", {}),
            ("/api/workflows/execution/trace-logs", {"enabled": True}),
            ("/api/workflows/execution/pause-control", {"action": "continue"}),
        ]:
            none_of_alpha(beta("POST", path, json=json_body), 404)
        for path in ["/api/workflows/executions/batches", "/v1/executions", "/v1/workflows"]:
            none_of_alpha(beta("GET", path))
        stopped = none_of_alpha(beta("POST", "/api/workflows/execution/stop-all"))
        assert (stopped["totalStopped"], stopped["batches"]) == (0, []), stopped
        cleared = none_of_alpha(beta("DELETE", "/api/workflows/executions/batches/clear"))
        assert cleared["batchesDeleted"] == 1 and "skippedBatches" not in cleared, cleared

    expected = {(e.method, e.path) for e in ENDPOINTS} - ROUTES_WITHOUT_CASES
    assert beta.exercised == expected, (
        f"routes without an isolation case: {sorted(expected - beta.exercised)}"
    )
    assert alpha_view(stubs, keyed, alpha) == before
    assert_alpha_still_works(stubs, keyed, alpha)
    with httpx.Client(base_url=keyed.handle.http_url, timeout=20, headers={"x-api-key": keyed.alpha}) as http:
        for path in [
            f"/v1/executions/{foreign.run}",
            f"/v1/executions/{foreign.hash}",
            f"/api/workflows/execution/{foreign.run}",
            f"/api/workflows/execution/batch/{foreign.batch}",
            f"/api/workflows/execution/batch/{alpha.done_batch}",
            f"/v1/workflows/{foreign.flow}",
            f"/resume/{foreign.flow}/{foreign.run}",
        ]:
            assert http.get(path).status_code == 200, path
        paused = http.get(f"/api/workflows/{foreign.flow}/paused").json()["pausedExecutions"]
        assert foreign.run in {item["executionId"] for item in paused}


# -- Socket.IO, through the real socket.io-client -----------------------------------------------------------

NODE = shutil.which("node")
SOCKET_CLIENT = Path(__file__).parent / "node" / "workspace_client.mjs"


class SocketClient:
    """tests/node/workspace_client.mjs in a Node process, connected with one workspace's key."""

    def __init__(self, options: dict[str, Any]) -> None:
        assert NODE is not None
        self.process = subprocess.Popen(
            [NODE, str(SOCKET_CLIENT), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=SOCKET_CLIENT.parent,
        )

    def ready(self) -> list[dict[str, Any]]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            _out, err = self.process.communicate(timeout=5)
            raise AssertionError(f"the Socket.IO client stopped before it was ready: {err}")
        ready = json.loads(line)
        assert ready.get("ready") is True, ready
        return list(ready["acks"])

    def result(self) -> list[dict[str, Any]]:
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


def test_socketio_keeps_workspaces_apart(keyed: Keyed, channel: grpc.Channel, alpha: Alpha) -> None:
    """Beta's subscriptions to alpha's runs and batches are refused as unknown ones are, and beta's
    socket gets none of alpha's updates while alpha's socket gets them."""
    if NODE is None:
        pytest.skip("node is not installed")
    stubs = Stubs(channel)
    alpha_meta, beta_meta = keyed.meta(keyed.alpha), keyed.meta(keyed.beta)
    start = stubs.method("ExecutionService/StartExecution")
    alpha_run = start(
        E.StartExecutionRequest(workflow_id=alpha.waiting_flow), metadata=alpha_meta, timeout=10
    ).execution.id
    beta_run = start(
        E.StartExecutionRequest(definition=definition(WAITING)), metadata=beta_meta, timeout=10
    ).execution.id
    wait_status(stubs, alpha_meta, alpha_run, (PAUSED,))
    wait_status(stubs, beta_meta, beta_run, (PAUSED,))
    foreign, missing = alpha.ids, made_up()
    live, done = replace(foreign, run=alpha_run), replace(foreign, batch=alpha.done_batch)
    probes = [  # (beta subscribes to alpha's, beta subscribes to a made-up one, the ids to blind)
        ({"executionId": foreign.run}, {"executionId": missing.run}, foreign),
        ({"executionId": live.run}, {"executionId": missing.run}, live),  # a run about to move
        ({"batchId": foreign.batch}, {"batchId": missing.batch}, foreign),
        ({"batchId": done.batch}, {"batchId": missing.batch}, done),
    ]
    url = keyed.handle.http_url
    clients: list[SocketClient] = []
    try:
        until = {"event": "execution-update", "status": "completed", "key": "executionId"}
        clients.append(
            SocketClient({"url": url, "apiKey": keyed.alpha, "until": {**until, "value": alpha_run}})
        )
        clients.append(
            SocketClient(
                {
                    "url": url,
                    "apiKey": keyed.beta,
                    "probes": [probe for pair in probes for probe in pair[:2]],
                    "until": {**until, "value": beta_run},
                }
            )
        )
        alpha_socket, beta_socket = clients
        alpha_socket.ready()
        acks = beta_socket.ready()
        for index, (_mine, _never, ids) in enumerate(probes):
            mine, never = acks[2 * index], acks[2 * index + 1]
            assert mine["success"] is False, (probes[index], mine)
            assert ids.blind(json.dumps(mine)) == missing.blind(json.dumps(never)), (mine, never)

        continue_run = stubs.method("ExecutionService/ControlPause")
        go_on = E.PAUSE_ACTION_CONTINUE
        continue_run(
            E.ControlPauseRequest(execution_id=alpha_run, action=go_on), metadata=alpha_meta, timeout=10
        )
        seen_by_alpha = alpha_socket.result()  # every update of alpha's run has been pushed now
        assert alpha_run in {event["data"].get("executionId") for event in seen_by_alpha}
        continue_run(
            E.ControlPauseRequest(execution_id=beta_run, action=go_on), metadata=beta_meta, timeout=10
        )
        seen_by_beta = beta_socket.result()
    finally:
        for client in clients:
            client.close()
    assert {event["data"].get("executionId") for event in seen_by_beta} == {beta_run}, seen_by_beta
    assert_none_of_alpha(alpha, json.dumps(seen_by_beta), "beta's socket")
    assert alpha_run not in json.dumps(seen_by_beta)


# -- one workspace's calls never hold another's runs ----------------------------------------------------


def test_pausing_another_workspaces_workflow_holds_none_of_its_runs(
    keyed: Keyed, channel: grpc.Channel, alpha: Alpha
) -> None:
    """Beta calls PauseWorkflow on alpha's workflow over and over (NOT_FOUND each time) while alpha
    starts runs of it: every one of alpha's runs goes on to the end. (They used to stay QUEUED or
    PAUSED for good: the engine-wide hold on the workflow was taken before its workspace was checked.)"""
    stubs = Stubs(channel)
    alpha_meta, beta_meta = keyed.meta(keyed.alpha), keyed.meta(keyed.beta)
    flow = stubs.method("WorkflowService/CreateWorkflow")(
        W.CreateWorkflowRequest(definition=definition(STEPS)), metadata=alpha_meta, timeout=10
    ).workflow.id
    done = threading.Event()

    def pause_alphas_workflow() -> int:
        calls = 0
        while not done.is_set():
            with pytest.raises(grpc.RpcError) as caught:
                stubs.method("WorkflowService/PauseWorkflow")(
                    W.PauseWorkflowRequest(workflow_id=flow), metadata=beta_meta, timeout=10
                )
            assert caught.value.code() == NOT_FOUND
            calls += 1
        return calls

    start = stubs.method("ExecutionService/StartExecution")
    with ThreadPoolExecutor(4) as pool:
        hammers = [pool.submit(pause_alphas_workflow) for _ in range(4)]
        try:
            runs = [
                start(E.StartExecutionRequest(workflow_id=flow), metadata=alpha_meta, timeout=10).execution.id
                for _ in range(30)
            ]
        finally:
            done.set()
        assert sum(hammer.result() for hammer in hammers) > 30
    deadline = time.monotonic() + 10
    while True:
        statuses = [_execution(stubs, alpha_meta, run).status for run in runs]
        if all(status in FINISHED for status in statuses) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    named = sorted(common_pb2.ExecutionStatus.Name(status) for status in statuses)
    assert named == ["EXECUTION_STATUS_COMPLETED"] * len(runs)
    workflow = stubs.method("WorkflowService/GetWorkflow")(
        W.GetWorkflowRequest(workflow_id=flow), metadata=alpha_meta, timeout=10
    ).workflow
    assert workflow.status == W.WORKFLOW_STATUS_ACTIVE


# -- last, since beta's runs then hold alpha's workflow id (as beta wrote it) ------------------------------


def test_a_sub_workflow_cannot_start_another_workspaces_workflow(
    keyed: Keyed, channel: grpc.Channel, alpha: Alpha
) -> None:
    """A subworkflow node naming alpha's workflow fails exactly as one naming a workflow that never was."""
    stubs = Stubs(channel)
    beta = Beta(stubs, keyed.meta(keyed.beta))
    before = alpha_view(stubs, keyed, alpha)
    ended: list[str] = []
    for ids in (alpha.ids, made_up()):
        child = {"id": "child", "type": "subworkflow", "config": {"workflowId": ids.flow}}
        execution_id = beta(
            "ExecutionService/StartExecution",
            E.StartExecutionRequest(definition=definition(linear(child, name="parent"))),
        ).execution.id
        wait_status(stubs, beta.meta, execution_id, FINISHED)
        run = _execution(stubs, beta.meta, execution_id)
        assert run.status == ERROR
        ended.append(ids.blind(run.error.message))
    assert ended[0] == ended[1] and "<flow>" in ended[0]
    assert alpha_view(stubs, keyed, alpha) == before
