"""Run control over the real gRPC API: stop, stop all, continue, pause control, operator pause, trace logs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import common_pb2, event_pb2, execution_pb2, workflow_pb2
from tests.engine_helpers import (
    DATABASE_KINDS,
    Client,
    LocalHttp,
    linear,
    local_http,
    node_reached,
    node_status,
    nodes_by_id,
    serving_client,
)
from tests.support import wait_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
RUNNING = common_pb2.EXECUTION_STATUS_RUNNING
STOPPED = common_pb2.EXECUTION_STATUS_STOPPED


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with serving_client(request.param, tmp_path_factory) as client:
        yield client


@pytest.fixture(scope="module")
def echo_server() -> Iterator[LocalHttp]:
    with local_http() as server:
        yield server


@pytest.fixture(scope="module")
def http_echo(echo_server: LocalHttp) -> str:
    return f"{echo_server.url}/echo"


def event_types(client: Client, execution_id: str) -> list[str]:
    return [
        event_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_") for e in client.history(execution_id)
    ]


def breakpoint_doc(*extra: dict[str, object]) -> dict[str, object]:
    return linear(
        {"id": "first", "type": "transform", "config": {"output": 1}, "breakpoint": True},
        {"id": "second", "type": "transform", "config": {"output": 2}},
        *extra,
    )


def long_delay() -> dict[str, object]:
    return {"id": "nap", "type": "delay", "config": {"seconds": 600}}


def continue_request(execution_id: str) -> execution_pb2.ControlPauseRequest:
    return execution_pb2.ControlPauseRequest(
        execution_id=execution_id, action=execution_pb2.PAUSE_ACTION_CONTINUE
    )


def test_stop_a_running_run_cancels_its_nodes(client: Client) -> None:
    execution_id = client.start(linear(long_delay())).id
    client.wait(execution_id, until=(RUNNING,))
    reply = client.executions.StopExecution(
        execution_pb2.StopExecutionRequest(execution_id=execution_id, reason="maintenance"), timeout=10
    )
    assert (reply.execution_id, reply.was_running, reply.was_queued) == (execution_id, True, False)
    # Committed before the answer: the very next read sees it stopped.
    execution = client.get(execution_id)
    assert execution.status == STOPPED
    assert node_status(execution)["nap"] == "stopped"
    assert "EXECUTION_STOPPED" in event_types(client, execution_id)


def test_stop_a_finished_run_is_failed_precondition(client: Client) -> None:
    execution = client.run(linear())
    with pytest.raises(grpc.RpcError) as caught:
        client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id=execution.id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already ended" in (caught.value.details() or "")


def test_stop_an_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id="exec_missing"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_continue_from_a_breakpoint_runs_the_node(client: Client) -> None:
    execution_id = client.start(breakpoint_doc()).id
    paused = client.wait(execution_id, until=(PAUSED,))
    assert paused.pause_reason == common_pb2.PAUSE_REASON_BREAKPOINT
    client.executions.ControlPause(continue_request(execution_id), timeout=10)
    done = client.wait(execution_id)
    assert done.status == COMPLETED
    assert nodes_by_id(done)["first"].status == common_pb2.NODE_STATUS_COMPLETED


def test_skip_marks_the_paused_node_skipped_and_goes_on(client: Client) -> None:
    execution_id = client.start(breakpoint_doc()).id
    client.wait(execution_id, until=(PAUSED,))
    client.executions.ControlPause(
        execution_pb2.ControlPauseRequest(execution_id=execution_id, action=execution_pb2.PAUSE_ACTION_SKIP),
        timeout=10,
    )
    done = client.wait(execution_id)
    assert done.status == COMPLETED
    assert node_status(done) == {
        "start": "completed",
        "first": "skipped",
        "second": "completed",
        "end": "completed",
    }


def test_continue_without_breakpoint_ignores_the_next_ones(client: Client) -> None:
    doc = breakpoint_doc({"id": "third", "type": "transform", "config": {"output": 3}, "breakpoint": True})
    execution_id = client.start(doc).id
    client.wait(execution_id, until=(PAUSED,))
    client.executions.ControlPause(
        execution_pb2.ControlPauseRequest(
            execution_id=execution_id, action=execution_pb2.PAUSE_ACTION_CONTINUE_WITHOUT_BREAKPOINT
        ),
        timeout=10,
    )
    done = client.wait(execution_id)
    assert done.status == COMPLETED and done.breakpoints_disabled


def test_operator_pause_holds_at_the_next_node_boundary(client: Client) -> None:
    doc = linear(
        {"id": "nap", "type": "delay", "config": {"seconds": 0.5}},
        {"id": "after", "type": "log", "config": {"message": "on"}},
    )
    execution_id = client.start(doc).id
    client.executions.PauseExecution(
        execution_pb2.PauseExecutionRequest(execution_id=execution_id), timeout=10
    )
    paused = client.wait(execution_id, until=(PAUSED,))
    assert paused.pause_reason == common_pb2.PAUSE_REASON_MANUAL

    # The delay ends while the run is paused; the node after it must not start.
    held = node_reached(client, execution_id, "nap")
    assert held.status == PAUSED
    assert "after" not in node_status(held) or node_status(held)["after"] == "idle"
    client.executions.ResumeExecution(
        execution_pb2.ResumeExecutionRequest(execution_id=execution_id), timeout=10
    )
    assert client.wait(execution_id).status == COMPLETED
    types = event_types(client, execution_id)
    assert types.index("EXECUTION_PAUSED") < types.index("EXECUTION_RESUMED")


def create_workflow(client: Client, document: dict[str, object]) -> str:
    reply = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(document)), timeout=10
    )
    return str(reply.workflow.id)


def test_stop_a_queued_run_cancels_it(client: Client) -> None:
    workflow_id = create_workflow(client, linear())
    client.workflows.PauseWorkflow(workflow_pb2.PauseWorkflowRequest(workflow_id=workflow_id), timeout=10)
    queued = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(workflow_id=workflow_id), timeout=10
    ).execution
    assert queued.status == common_pb2.EXECUTION_STATUS_QUEUED
    with pytest.raises(grpc.RpcError) as caught:
        client.executions.PauseExecution(execution_pb2.PauseExecutionRequest(execution_id=queued.id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reply = client.executions.StopExecution(
        execution_pb2.StopExecutionRequest(execution_id=queued.id), timeout=10
    )
    assert (reply.was_running, reply.was_queued) == (False, True)
    assert client.get(queued.id).status == STOPPED
    client.workflows.ResumeWorkflow(workflow_pb2.ResumeWorkflowRequest(workflow_id=workflow_id), timeout=10)
    assert client.get(queued.id).status == STOPPED  # a resume does not bring it back


def violated_fields(error: grpc.RpcError) -> list[str]:
    """The fields named by the error's google.rpc.BadRequest."""
    status = rpc_status.from_call(error)
    assert status is not None, error.details()
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields.extend(v.field for v in bad_request.field_violations)
    return fields


NO_ID_CALLS: list[tuple[str, Callable[[Client], object]]] = [
    ("StopExecution", lambda c: c.executions.StopExecution(execution_pb2.StopExecutionRequest(), timeout=10)),
    (
        "ControlPause",
        lambda c: c.executions.ControlPause(continue_request(""), timeout=10),
    ),
    (
        "ControlPause skip",
        lambda c: c.executions.ControlPause(
            execution_pb2.ControlPauseRequest(action=execution_pb2.PAUSE_ACTION_SKIP), timeout=10
        ),
    ),
    (
        "SetTraceLogs",
        lambda c: c.executions.SetTraceLogs(execution_pb2.SetTraceLogsRequest(enabled=True), timeout=10),
    ),
    (
        "GetExecution",
        lambda c: c.executions.GetExecution(
            execution_pb2.GetExecutionRequest(view=execution_pb2.EXECUTION_VIEW_BASIC), timeout=10
        ),
    ),
    (
        "PauseExecution",
        lambda c: c.executions.PauseExecution(execution_pb2.PauseExecutionRequest(), timeout=10),
    ),
    (
        "ResumeExecution",
        lambda c: c.executions.ResumeExecution(execution_pb2.ResumeExecutionRequest(), timeout=10),
    ),
    (
        "GetExecutionHistory",
        lambda c: c.executions.GetExecutionHistory(execution_pb2.GetExecutionHistoryRequest(), timeout=10),
    ),
    (
        "WatchExecution",
        lambda c: list(
            c.executions.WatchExecution(execution_pb2.WatchExecutionRequest(after_sequence=0), timeout=10)
        ),
    ),
]


@pytest.mark.parametrize(("name", "call"), NO_ID_CALLS, ids=[name for name, _ in NO_ID_CALLS])
def test_an_empty_execution_id_is_invalid_and_touches_no_run(
    client: Client, name: str, call: Callable[[Client], object]
) -> None:
    """No call picks "the most recent" run for an empty id: a client that lost the id acts on nothing."""
    paused = client.start(breakpoint_doc()).id
    client.wait(paused, until=(PAUSED,))
    before = client.get(paused)
    with pytest.raises(grpc.RpcError) as caught:
        call(client)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, caught.value.details())
    assert violated_fields(caught.value) == ["execution_id"], name
    after = client.get(paused)
    assert (after.status, after.trace_logs, after.paused_node_id) == (PAUSED, before.trace_logs, "first")
    assert after.last_sequence == before.last_sequence  # nothing happened to it
    client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id=paused), timeout=10)


def test_control_errors_are_precise(client: Client) -> None:
    def code(call: Callable[[], object]) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        return caught.value.code()

    running = client.start(linear(long_delay())).id
    client.wait(running, until=(RUNNING,))
    no_action = execution_pb2.ControlPauseRequest(execution_id=running)
    assert code(lambda: client.executions.ControlPause(no_action)) == grpc.StatusCode.INVALID_ARGUMENT
    not_paused = continue_request(running)
    assert code(lambda: client.executions.ControlPause(not_paused)) == grpc.StatusCode.FAILED_PRECONDITION
    resume = execution_pb2.ResumeExecutionRequest(execution_id=running)
    assert code(lambda: client.executions.ResumeExecution(resume)) == grpc.StatusCode.FAILED_PRECONDITION
    hold = execution_pb2.PauseExecutionRequest(execution_id=running)
    client.executions.PauseExecution(hold, timeout=10)
    assert code(lambda: client.executions.PauseExecution(hold)) == grpc.StatusCode.FAILED_PRECONDITION
    skip = execution_pb2.ControlPauseRequest(execution_id=running, action=execution_pb2.PAUSE_ACTION_SKIP)
    assert code(lambda: client.executions.ControlPause(skip)) == grpc.StatusCode.FAILED_PRECONDITION
    empty = execution_pb2.PauseExecutionRequest()
    assert code(lambda: client.executions.PauseExecution(empty)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = continue_request("exec_missing")
    assert code(lambda: client.executions.ControlPause(missing)) == grpc.StatusCode.NOT_FOUND
    # The removed PAUSE_ACTION_STOP (2): stopping is StopExecution's alone, paused or not.
    old_stop = execution_pb2.ControlPauseRequest(execution_id=running, action=2)  # type: ignore[arg-type]
    assert code(lambda: client.executions.ControlPause(old_stop)) == grpc.StatusCode.INVALID_ARGUMENT
    assert client.get(running).status != STOPPED
    stop = execution_pb2.StopExecutionRequest(execution_id=running)
    assert client.executions.StopExecution(stop, timeout=10).was_running
    assert client.get(running).status == STOPPED


def test_trace_logs_record_inputs_outputs_and_timings(client: Client, http_echo: str) -> None:
    doc = linear(
        {"id": "first", "type": "transform", "config": {"output": "{{ input.n }}"}, "breakpoint": True},
        {"id": "call", "type": "http", "config": {"url": http_echo, "method": "POST", "body": {"n": 1}}},
        {"id": "after", "type": "transform", "config": {"output": "x{{ input.n }}"}},
    )
    execution_id = client.start(doc, input={"n": 7}).id
    client.wait(execution_id, until=(PAUSED,))
    reply = client.executions.SetTraceLogs(
        execution_pb2.SetTraceLogsRequest(execution_id=execution_id, enabled=True), timeout=10
    )
    assert reply.enabled and reply.execution_id == execution_id
    client.executions.ControlPause(continue_request(execution_id), timeout=10)
    done = client.wait(execution_id)
    assert done.status == COMPLETED and done.trace_logs
    nodes = nodes_by_id(done)
    after = [json_format.MessageToDict(line) for line in nodes["after"].logs]
    assert after[0]["details"]["input"] == {"output": "x7"}
    assert after[-1]["details"]["output"] == "x7" and "elapsedMs" in after[-1]["details"]
    call = [json_format.MessageToDict(line)["message"] for line in nodes["call"].logs]
    assert any(message.startswith("POST ") and message.endswith("-> 200") for message in call)
    types = event_types(client, execution_id)
    assert "EXECUTION_TRACE_LOGS_CHANGED" in types and "NODE_LOG" in types
    # Off again: a fresh run without trace logs keeps no engine log lines.
    quiet = client.run(linear({"id": "only", "type": "transform", "config": {"output": 1}}))
    assert not nodes_by_id(quiet)["only"].logs


def test_stop_cancels_an_http_call_in_flight(client: Client, echo_server: LocalHttp) -> None:
    slow = f"{echo_server.url}/slow/{uuid.uuid4().hex}"
    execution_id = client.start(linear({"id": "call", "type": "http", "config": {"url": slow}})).id
    path = slow.removeprefix(echo_server.url)
    wait_for(lambda: any(r.path == path for r in echo_server.requests), what="the request to be under way")
    client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id=execution_id), timeout=10)
    # Stopped without waiting for the answer, which the route holds back 2 s.
    assert not any(r.path == path for r in echo_server.answered)
    stopped = client.get(execution_id)
    assert stopped.status == STOPPED and node_status(stopped)["call"] == "stopped"
    # The slow answer comes after all (the route holds it 2 s): it changes nothing.
    wait_for(lambda: any(r.path == path for r in echo_server.answered), what="the slow answer")
    assert client.get(execution_id).status == STOPPED
