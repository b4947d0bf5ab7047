"""ResumePausePoint and ResumeNode over the real gRPC API, on SQLite and on PostgreSQL: form checks,
secrets, for-each stacks, exactly one winner among concurrent resumes, expiry, idempotent retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import common_pb2, event_pb2, execution_pb2, pause_point_pb2, workflow_pb2
from tests.engine_helpers import (
    DATABASE_KINDS,
    Client,
    linear,
    node_status,
    nodes_by_id,
    output,
    serving_client,
    to_struct,
)

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
ERROR = common_pb2.EXECUTION_STATUS_ERROR
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
RESUMED = execution_pb2.RESUME_ACTION_RESUMED
SKIPPED = execution_pb2.RESUME_ACTION_SKIPPED
WAITING = common_pb2.NODE_STATUS_WAITING

APPROVAL_FIELDS = [
    {"name": "approved", "type": "boolean", "required": True},
    {"name": "note", "type": "text"},
    {"name": "amount", "type": "number"},
    {"name": "tier", "type": "select", "options": ["gold", "silver"], "default": "silver"},
]


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with serving_client(request.param, tmp_path_factory) as client:
        yield client


# -- helpers -------------------------------------------------------------------------------------


def create_workflow(client: Client, document: Mapping[str, Any]) -> tuple[str, str]:
    """A stored workflow: its id and its webhook secret (shown once, at creation)."""
    request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(document))
    created = client.workflows.CreateWorkflow(request, timeout=10).workflow
    return created.id, created.webhook_secret


def start_workflow(client: Client, workflow_id: str, input: Mapping[str, Any] | None = None) -> str:
    request = execution_pb2.StartExecutionRequest(workflow_id=workflow_id, input=to_struct(input or {}))
    return str(client.executions.StartExecution(request, timeout=10).execution.id)


def run_workflow(
    client: Client, document: Mapping[str, Any], input: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """Start a run of a new stored workflow: the run's id and the workflow's secret."""
    workflow_id, secret = create_workflow(client, document)
    return start_workflow(client, workflow_id, input), secret


def resume_node(
    client: Client,
    execution_id: str,
    node_id: str,
    secret: str,
    data: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> execution_pb2.ResumeNodeResponse:
    request = execution_pb2.ResumeNodeRequest(
        execution_id=execution_id, node_id=node_id, secret=secret, data=to_struct(data or {}), **kwargs
    )
    return client.executions.ResumeNode(request, timeout=10)


def resume_pause_point(
    client: Client, context_id: str, values: Mapping[str, Any] | None = None, **kwargs: Any
) -> execution_pb2.ResumePausePointResponse:
    request = execution_pb2.ResumePausePointRequest(
        context_id=context_id, values=to_struct(values or {}), **kwargs
    )
    return client.executions.ResumePausePoint(request, timeout=10)


def stack(*levels: tuple[str, int, int]) -> common_pb2.ForEachContext:
    return common_pb2.ForEachContext(
        stack=[common_pb2.ForEachFrame(parent_node_id=p, index=i, total=t) for p, i, t in levels]
    )


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def violations(error: grpc.RpcError) -> dict[str, str]:
    """The google.rpc.BadRequest field violations of a refused call."""
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.update({v.field: v.description for v in bad_request.field_violations})
    return found


def poll(client: Client, execution_id: str, ready: Callable[[execution_pb2.Execution], bool]) -> Any:
    deadline = time.monotonic() + 20
    while True:
        execution = client.get(execution_id)
        if ready(execution):
            return execution
        if time.monotonic() > deadline:
            raise TimeoutError(json_format.MessageToJson(execution))
        time.sleep(0.02)


def iteration(
    execution: execution_pb2.Execution, node_id: str, indices: Sequence[int]
) -> execution_pb2.NodeState | None:
    """The node's state in one loop iteration, named by its indices outermost first."""
    for node in execution.nodes:
        if node.node_id == node_id and [level.index for level in node.stack] == list(indices):
            return node
    return None


def wait_waiting(client: Client, execution_id: str, node_id: str, indices: Sequence[int] = ()) -> str:
    """Poll until the node (in that iteration) waits at a pause point; answers its context id."""

    def waiting(execution: execution_pb2.Execution) -> bool:
        node = iteration(execution, node_id, indices)
        return node is not None and node.status == WAITING and bool(node.context_id)

    node = iteration(poll(client, execution_id, waiting), node_id, indices)
    assert node is not None
    return node.context_id


def context_ids(client: Client, execution_id: str) -> list[str]:
    """The pause points a run made, from its history (finished runs list no open pause points)."""
    return [
        event.pause_point_created_attributes.context_id
        for event in client.history(execution_id)
        if event.type == event_pb2.EVENT_TYPE_PAUSE_POINT_CREATED
    ]


def approval_then_report(**approval_config: Any) -> dict[str, Any]:
    doc = linear(
        {
            "id": "approve",
            "type": "approval",
            "config": {"title": "Ship it?", "formFields": APPROVAL_FIELDS, **approval_config},
        },
        {
            "id": "report",
            "type": "transform",
            "config": {
                "output": {
                    "approved": "{{ nodes.approve.output.approved }}",
                    "tier": "{{ nodes.approve.output.tier }}",
                }
            },
        },
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.report.output }}"}
    return doc


def nested_loops() -> dict[str, Any]:
    """outer over input.rows, inner over each row, a wait inside; the end gathers the answers."""
    inner = {
        "id": "inner",
        "type": "for_each",
        "config": {"items": "item"},
        "body": {"nodes": [{"id": "hold", "type": "wait"}], "edges": []},
    }
    doc = linear(
        {
            "id": "outer",
            "type": "for_each",
            "config": {"items": "input.rows"},
            "body": {"nodes": [inner], "edges": []},
        }
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.outer.output }}"}
    return doc


# -- ResumePausePoint ------------------------------------------------------------------------------


def test_approval_values_become_the_output_that_later_nodes_read(client: Client) -> None:
    execution_id = client.start(approval_then_report()).id
    context_id = wait_waiting(client, execution_id, "approve")
    reply = resume_pause_point(
        client, context_id, {"approved": True, "note": "looks fine"}, actor="ada@example.com"
    )
    assert reply.action == RESUMED and reply.reason == ""
    pause = reply.pause_point
    assert pause.context_id == context_id and pause.resume_status == pause_point_pb2.RESUME_STATUS_RESUMED
    assert pause.resolved_by == "ada@example.com" and pause.HasField("resolve_time")
    resolved = {"approved": True, "note": "looks fine", "tier": "silver"}  # the default filled in
    assert json_format.MessageToDict(pause.resume_data) == resolved
    execution = client.wait(execution_id)
    assert execution.status == COMPLETED
    assert json_format.MessageToDict(nodes_by_id(execution)["approve"].output) == resolved
    assert output(execution.output) == {"approved": True, "tier": "silver"}


def test_bad_form_values_are_refused_with_a_violation_each(client: Client) -> None:
    execution_id = client.start(approval_then_report()).id
    context_id = wait_waiting(client, execution_id, "approve")
    bad = {"note": 7, "amount": "ten", "tier": "bronze", "colour": "red"}
    error = refused(lambda: resume_pause_point(client, context_id, bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {
        "values.approved": "is required",
        "values.note": "must be a string, got a number",
        "values.amount": "must be a number, got a string",
        "values.tier": "must be one of: gold, silver",
        "values.colour": "is not a field of this form (fields: approved, note, amount, tier)",
    }
    # Nothing was resumed: a valid submission still wins.
    assert resume_pause_point(client, context_id, {"approved": False}).action == RESUMED


def test_a_wait_pause_point_takes_any_object(client: Client) -> None:
    execution_id = client.start(linear({"id": "hold", "type": "wait"})).id
    context_id = wait_waiting(client, execution_id, "hold")
    data = {"anything": [1, "two", {"three": 3}]}
    assert resume_pause_point(client, context_id, data).action == RESUMED
    execution = client.wait(execution_id)
    assert json_format.MessageToDict(nodes_by_id(execution)["hold"].output) == data


def test_unknown_or_mismatched_pause_points_are_not_found(client: Client) -> None:
    error = refused(lambda: resume_pause_point(client, ""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"context_id"}
    assert refused(lambda: resume_pause_point(client, "ctx_nope")).code() == grpc.StatusCode.NOT_FOUND
    execution_id, _secret = run_workflow(client, linear({"id": "hold", "type": "wait"}))
    context_id = wait_waiting(client, execution_id, "hold")
    mismatches: list[dict[str, Any]] = [{"execution_id": "exec_other"}, {"workflow_id": "wf_other"}]
    for mismatch in mismatches:
        error = refused(partial(resume_pause_point, client, context_id, **mismatch))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    workflow_id = client.get(execution_id).workflow_id
    reply = resume_pause_point(client, context_id, workflow_id=workflow_id, execution_id=execution_id)
    assert reply.action == RESUMED


def test_a_breakpoint_is_not_resumed_with_values(client: Client) -> None:
    doc = linear({"id": "step", "type": "transform", "config": {"output": 1}, "breakpoint": True})
    execution_id = client.start(doc).id
    context_id = wait_waiting(client, execution_id, "step")
    error = refused(lambda: resume_pause_point(client, context_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ControlPause" in (error.details() or "")


def test_later_resumes_are_skipped_and_a_retry_of_the_winner_is_resumed(client: Client) -> None:
    execution_id = client.start(linear({"id": "hold", "type": "wait"})).id
    context_id = wait_waiting(client, execution_id, "hold")
    assert resume_pause_point(client, context_id, {"n": 1}, request_id="first").action == RESUMED
    again = resume_pause_point(client, context_id, {"n": 2}, request_id="second")
    assert (again.action, again.reason) == (SKIPPED, "already resumed")
    assert json_format.MessageToDict(again.pause_point.resume_data) == {"n": 1}
    retry = resume_pause_point(client, context_id, {"n": 1}, request_id="first")
    assert retry.action == RESUMED
    assert retry.pause_point.resume_status == pause_point_pb2.RESUME_STATUS_RESUMED
    client.wait(execution_id)
    assert resume_pause_point(client, context_id, request_id="first").action == RESUMED  # run ended


def test_resumes_of_a_stopped_run_are_skipped(client: Client) -> None:
    execution_id, secret = run_workflow(client, linear({"id": "hold", "type": "wait"}))
    context_id = wait_waiting(client, execution_id, "hold")
    client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id=execution_id), timeout=10)
    reply = resume_pause_point(client, context_id)
    assert (reply.action, reply.reason) == (SKIPPED, "cancelled")
    by_node = resume_node(client, execution_id, "hold", secret)
    assert (by_node.action, by_node.reason) == (SKIPPED, "the execution has already ended (stopped)")


# -- expiry ------------------------------------------------------------------------------------------


def test_an_expired_approval_fails_the_run_and_refuses_late_answers(client: Client) -> None:
    execution = client.run(approval_then_report(timeoutSeconds=0.3, onTimeout="fail"))
    assert execution.status == ERROR and execution.error.code == "EXPIRED"
    (context_id,) = context_ids(client, execution.id)
    late = resume_pause_point(client, context_id, {"approved": True})
    assert (late.action, late.reason) == (SKIPPED, "expired")
    assert late.pause_point.resume_status == pause_point_pb2.RESUME_STATUS_EXPIRED


def test_an_expired_approval_can_take_the_timeout_branch(client: Client) -> None:
    doc = {
        "name": "approval expiry branch",
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "approve",
                "type": "approval",
                "config": {"formFields": APPROVAL_FIELDS, "timeoutSeconds": 0.3, "onTimeout": "branch"},
            },
            {"id": "normal", "type": "log", "config": {"message": "approved in time"}},
            {"id": "late", "type": "log", "config": {"message": "nobody answered"}},
        ],
        "edges": [
            {"from": "start", "to": "approve"},
            {"from": "approve", "to": "normal"},
            {"from": "approve", "to": "late", "when": "timeout"},
        ],
    }
    execution = client.run(doc)
    assert execution.status == COMPLETED
    assert node_status(execution) == {
        "start": "completed",
        "approve": "completed",
        "normal": "skipped",
        "late": "completed",
    }
    assert json_format.MessageToDict(nodes_by_id(execution)["approve"].output) == {"expired": True}
    (context_id,) = context_ids(client, execution.id)
    late = resume_pause_point(client, context_id, {"approved": True})
    assert late.pause_point.resume_status == pause_point_pb2.RESUME_STATUS_EXPIRED


# -- ResumeNode --------------------------------------------------------------------------------------


def test_resume_node_puts_the_data_in_the_output(client: Client) -> None:
    doc = linear(
        {"id": "hold", "type": "wait"},
        {"id": "use", "type": "transform", "config": {"output": "{{ nodes.hold.output.answer }}"}},
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.use.output }}"}
    execution_id, secret = run_workflow(client, doc)
    wait_waiting(client, execution_id, "hold")
    reply = resume_node(client, execution_id, "hold", secret, {"answer": 42})
    assert (reply.action, reply.reason) == (RESUMED, "")
    execution = client.wait(execution_id)
    assert execution.status == COMPLETED and output(execution.output) == 42.0


def test_resume_node_checks_an_approval_form(client: Client) -> None:
    execution_id, secret = run_workflow(client, approval_then_report())
    wait_waiting(client, execution_id, "approve")
    error = refused(lambda: resume_node(client, execution_id, "approve", secret, {"approved": "yes"}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"data.approved": "must be true or false, got a string"}
    assert resume_node(client, execution_id, "approve", secret, {"approved": True}).action == RESUMED
    execution = client.wait(execution_id)
    assert output(execution.output) == {"approved": True, "tier": "silver"}


def test_resume_node_refuses_bad_requests_and_bad_secrets(client: Client) -> None:
    error = refused(lambda: resume_node(client, "", "", ""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"execution_id", "node_id", "secret"}
    unknown_run = refused(lambda: resume_node(client, "exec_nope", "hold", "s"))
    assert unknown_run.code() == grpc.StatusCode.NOT_FOUND

    execution_id, secret = run_workflow(client, linear({"id": "hold", "type": "wait"}))
    wait_waiting(client, execution_id, "hold")
    for bad_secret in ("wrong", secret[:-1], ""):
        error = refused(partial(resume_node, client, execution_id, "hold", bad_secret))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    # Whether a node exists is not told to a caller without the secret.
    hidden = refused(lambda: resume_node(client, execution_id, "ghost", "wrong"))
    assert hidden.code() == grpc.StatusCode.UNAUTHENTICATED
    unknown_node = refused(lambda: resume_node(client, execution_id, "ghost", secret))
    assert unknown_node.code() == grpc.StatusCode.NOT_FOUND
    assert client.get(execution_id).status == PAUSED


def test_a_run_without_a_workflow_has_no_secret_to_match(client: Client) -> None:
    execution_id = client.start(linear({"id": "hold", "type": "wait"})).id
    wait_waiting(client, execution_id, "hold")
    error = refused(lambda: resume_node(client, execution_id, "hold", "anything"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "ResumePausePoint" in (error.details() or "")


def test_resume_node_skips_nodes_that_are_not_waiting(client: Client) -> None:
    doc = linear(
        {"id": "first", "type": "wait"},
        {"id": "second", "type": "wait"},
        {"id": "calc", "type": "transform", "config": {"output": 1}},
    )
    execution_id, secret = run_workflow(client, doc)
    wait_waiting(client, execution_id, "first")
    early = resume_node(client, execution_id, "second", secret)
    assert (early.action, early.reason) == (SKIPPED, "node second has not been reached yet")
    not_pausing = resume_node(client, execution_id, "calc", secret)
    assert not_pausing.action == SKIPPED and "transform node" in not_pausing.reason
    assert resume_node(client, execution_id, "first", secret, {"go": 1}).action == RESUMED
    again = resume_node(client, execution_id, "first", secret, {"go": 2})
    assert (again.action, again.reason) == (SKIPPED, "already resumed")
    assert json_format.MessageToDict(nodes_by_id(client.get(execution_id))["first"].output) == {"go": 1}


def test_resume_node_retry_with_the_same_request_id_is_resumed(client: Client) -> None:
    execution_id, secret = run_workflow(client, linear({"id": "hold", "type": "wait"}))
    wait_waiting(client, execution_id, "hold")
    assert resume_node(client, execution_id, "hold", secret, request_id="once").action == RESUMED
    assert resume_node(client, execution_id, "hold", secret, request_id="other").action == SKIPPED
    client.wait(execution_id)
    assert resume_node(client, execution_id, "hold", secret, request_id="once").action == RESUMED


def test_exactly_one_of_fifty_concurrent_resumes_wins(client: Client) -> None:
    execution_id, secret = run_workflow(client, linear({"id": "hold", "type": "wait"}))
    wait_waiting(client, execution_id, "hold")
    callers = 50
    start_together = threading.Barrier(callers)

    def call(n: int) -> execution_pb2.ResumeNodeResponse:
        start_together.wait(10)
        return resume_node(client, execution_id, "hold", secret, {"caller": n})

    with ThreadPoolExecutor(callers) as pool:
        replies = list(pool.map(call, range(callers)))
    winners = [n for n, reply in enumerate(replies) if reply.action == RESUMED]
    assert len(winners) == 1, [(r.action, r.reason) for r in replies]
    assert all(r.reason == "already resumed" for r in replies if r.action == SKIPPED)
    execution = client.wait(execution_id)
    assert json_format.MessageToDict(nodes_by_id(execution)["hold"].output) == {"caller": winners[0]}
    (context_id,) = context_ids(client, execution_id)
    closed = resume_pause_point(client, context_id).pause_point
    assert closed.resume_status == pause_point_pb2.RESUME_STATUS_RESUMED
    assert json_format.MessageToDict(closed.resume_data) == {"caller": winners[0]}


def test_nested_loop_iterations_are_resumed_one_by_one_by_stack(client: Client) -> None:
    execution_id, secret = run_workflow(client, nested_loops(), {"rows": [["a", "b"], ["c", "d"]]})
    wait_waiting(client, execution_id, "hold", (0, 0))
    ahead = resume_node(
        client, execution_id, "hold", secret, for_each_context=stack(("outer", 1, 2), ("inner", 1, 2))
    )
    assert (ahead.action, ahead.reason) == (SKIPPED, "node outer[1].inner[1].hold has not been reached yet")
    for outer in range(2):
        for inner in range(2):
            wait_waiting(client, execution_id, "hold", (outer, inner))
            where = stack(("outer", outer, 2), ("inner", inner, 2))
            data = {"cell": f"{outer}.{inner}"}
            reply = resume_node(client, execution_id, "hold", secret, data, for_each_context=where)
            assert (reply.action, reply.reason) == (RESUMED, "")
            again = resume_node(client, execution_id, "hold", secret, data, for_each_context=where)
            assert (again.action, again.reason) == (SKIPPED, "already resumed")
    execution = client.wait(execution_id)
    assert execution.status == COMPLETED
    assert output(execution.output) == [
        [{"cell": "0.0"}, {"cell": "0.1"}],
        [{"cell": "1.0"}, {"cell": "1.1"}],
    ]


def test_a_bad_for_each_stack_is_refused(client: Client) -> None:
    execution_id, secret = run_workflow(client, nested_loops(), {"rows": [["a"]]})
    wait_waiting(client, execution_id, "hold", (0, 0))

    def fields(context: common_pb2.ForEachContext | None) -> dict[str, str]:
        kwargs: dict[str, Any] = {} if context is None else {"for_each_context": context}
        error = refused(lambda: resume_node(client, execution_id, "hold", secret, **kwargs))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return violations(error)

    assert set(fields(None)) == {"for_each_context.stack"}
    assert set(fields(stack(("outer", -1, 1), ("start", 0, 1)))) == {
        "for_each_context.stack[0].index",
        "for_each_context.stack[1].parent_node_id",
    }
    assert set(fields(stack(("inner", 0, 1), ("outer", 0, 1)))) == {
        "for_each_context.stack[0].parent_node_id",
        "for_each_context.stack[1].parent_node_id",
    }
    assert set(fields(stack(("outer", 0, 1), ("inner", 0, 1), ("inner", 0, 1)))) == {
        "for_each_context.stack[2]"
    }
    assert client.get(execution_id).status == PAUSED


def test_a_stack_of_one_names_a_single_level_iteration(client: Client) -> None:
    doc = linear(
        {
            "id": "send",
            "type": "for_each",
            "config": {"items": "input.to"},
            "body": {"nodes": [{"id": "hold", "type": "wait"}], "edges": []},
        }
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.send.output }}"}
    execution_id, secret = run_workflow(client, doc, {"to": ["ada", "bob"]})
    for index in range(2):
        wait_waiting(client, execution_id, "hold", (index,))
        where = stack(("send", index, 2))
        reply = resume_node(client, execution_id, "hold", secret, {"i": index}, for_each_context=where)
        assert reply.action == RESUMED
    execution = client.wait(execution_id)
    assert output(execution.output) == [{"i": 0.0}, {"i": 1.0}]
    bad = stack(("send", -1, 2))
    error = refused(lambda: resume_node(client, execution_id, "hold", secret, for_each_context=bad))
    assert set(violations(error)) == {"for_each_context.stack[0].index"}
