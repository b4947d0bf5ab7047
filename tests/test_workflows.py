"""WorkflowService CRUD and the execution read calls over the real gRPC API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from tests.engine_helpers import FINISHED, Client, linear, output, to_struct
from tests.support import ServerThread

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as client:
        yield client


def _create(client: Client, document: Mapping[str, Any], **kwargs: str) -> workflow_pb2.Workflow:
    request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(document), **kwargs)
    return client.workflows.CreateWorkflow(request, timeout=10).workflow


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    return error.value.code()


def test_create_returns_the_secret_once_and_the_document_round_trips(client: Client) -> None:
    document = linear({"id": "greet", "type": "transform", "config": {"output": "hi"}}, name="Greeter")
    document["positions"] = {"start": {"x": 450, "y": 0}}
    created = _create(client, document)
    assert created.id.startswith("wf_")
    assert created.version == 1 and created.status == workflow_pb2.WORKFLOW_STATUS_ACTIVE
    assert len(created.webhook_secret) >= 24
    fetched = client.workflows.GetWorkflow(
        workflow_pb2.GetWorkflowRequest(workflow_id=created.id), timeout=10
    ).workflow
    assert fetched.webhook_secret == ""
    assert fetched.name == "Greeter"
    as_json = json_format.MessageToDict(fetched.definition)
    assert as_json["edges"][0] == {"from": "start", "to": "greet"}
    position = fetched.definition.positions["start"]
    assert (position.x, position.y) == (450, 0)


def test_create_is_idempotent_by_request_id(client: Client) -> None:
    document = linear(name="Idempotent")
    first = _create(client, document, request_id="create-once")
    again = _create(client, document, request_id="create-once")
    assert again.id == first.id
    assert again.webhook_secret == ""  # shown only when it was made


def test_invalid_definitions_are_refused_with_field_violations(client: Client) -> None:
    bad = {"name": "bad", "nodes": [{"id": "a", "type": "transform"}], "edges": []}
    assert _code(lambda: _create(client, bad)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        _code(lambda: client.workflows.CreateWorkflow(workflow_pb2.CreateWorkflowRequest(), timeout=10))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_update_makes_a_new_version_and_running_executions_keep_theirs(client: Client) -> None:
    workflow = _create(client, linear({"id": "hold", "type": "wait"}, name="Versioned"))
    execution_id = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(workflow_id=workflow.id), timeout=10
    ).execution.id
    client.wait(execution_id, until=(PAUSED,))
    updated = client.workflows.UpdateWorkflow(
        workflow_pb2.UpdateWorkflowRequest(
            workflow_id=workflow.id,
            definition=as_definition(
                linear({"id": "quick", "type": "transform", "config": {"output": 2}}, name="V2")
            ),
        ),
        timeout=10,
    ).workflow
    assert updated.version == 2 and updated.name == "V2"
    running = client.get(execution_id)
    assert running.workflow_version == 1
    assert [n.id for n in running.definition.nodes] == ["start", "hold", "end"]
    second = client.wait(
        client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_id=workflow.id), timeout=10
        ).execution.id
    )
    assert second.workflow_version == 2 and second.status == COMPLETED
    stale = workflow_pb2.UpdateWorkflowRequest(
        workflow_id=workflow.id, definition=as_definition(linear(name="V3")), expected_version=1
    )
    assert _code(lambda: client.workflows.UpdateWorkflow(stale, timeout=10)) == grpc.StatusCode.ABORTED


def test_delete_hides_the_workflow_and_refuses_new_runs(client: Client) -> None:
    workflow = _create(client, linear(name="Doomed"))
    client.workflows.DeleteWorkflow(workflow_pb2.DeleteWorkflowRequest(workflow_id=workflow.id), timeout=10)
    get = workflow_pb2.GetWorkflowRequest(workflow_id=workflow.id)
    assert _code(lambda: client.workflows.GetWorkflow(get, timeout=10)) == grpc.StatusCode.NOT_FOUND
    start = execution_pb2.StartExecutionRequest(workflow_id=workflow.id)
    assert _code(lambda: client.executions.StartExecution(start, timeout=10)) == grpc.StatusCode.NOT_FOUND
    delete = workflow_pb2.DeleteWorkflowRequest(workflow_id=workflow.id)
    assert _code(lambda: client.workflows.DeleteWorkflow(delete, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_delete_refuses_a_workflow_with_unfinished_runs_unless_forced(client: Client) -> None:
    workflow = _create(
        client, linear({"id": "hold", "type": "delay", "config": {"seconds": 60}}, name="Busy")
    )
    started = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(workflow_id=workflow.id), timeout=10
    ).execution.id
    delete = workflow_pb2.DeleteWorkflowRequest(workflow_id=workflow.id)
    with pytest.raises(grpc.RpcError) as refused:
        client.workflows.DeleteWorkflow(delete, timeout=10)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "unfinished run" in (refused.value.details() or "")
    assert client.get(started).status != common_pb2.EXECUTION_STATUS_STOPPED
    forced = workflow_pb2.DeleteWorkflowRequest(workflow_id=workflow.id, force=True)
    client.workflows.DeleteWorkflow(forced, timeout=10)
    assert client.wait(started).status == common_pb2.EXECUTION_STATUS_STOPPED
    get = workflow_pb2.GetWorkflowRequest(workflow_id=workflow.id)
    assert _code(lambda: client.workflows.GetWorkflow(get, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_a_given_version_is_returned_and_run(client: Client) -> None:
    workflow = _create(
        client, linear({"id": "say", "type": "transform", "config": {"output": "one"}}, name="V1")
    )
    update = workflow_pb2.UpdateWorkflowRequest(
        workflow_id=workflow.id,
        definition=as_definition(
            linear({"id": "say", "type": "transform", "config": {"output": "two"}}, name="V2")
        ),
    )
    client.workflows.UpdateWorkflow(update, timeout=10)
    first = client.workflows.GetWorkflow(
        workflow_pb2.GetWorkflowRequest(workflow_id=workflow.id, version=1), timeout=10
    ).workflow
    assert (first.version, first.name, first.definition.name) == (1, "V1", "V1")
    latest = client.workflows.GetWorkflow(
        workflow_pb2.GetWorkflowRequest(workflow_id=workflow.id), timeout=10
    )
    assert (latest.workflow.version, latest.workflow.name) == (2, "V2")
    never = workflow_pb2.GetWorkflowRequest(workflow_id=workflow.id, version=3)
    assert _code(lambda: client.workflows.GetWorkflow(never, timeout=10)) == grpc.StatusCode.NOT_FOUND
    negative = workflow_pb2.GetWorkflowRequest(workflow_id=workflow.id, version=-1)
    assert (
        _code(lambda: client.workflows.GetWorkflow(negative, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    )

    old = execution_pb2.StartExecutionRequest(workflow_id=workflow.id, workflow_version=1)
    run = client.executions.StartExecution(old, timeout=10).execution.id
    finished = client.wait(run)
    assert (finished.workflow_version, finished.status) == (1, COMPLETED)
    assert output(finished.definition)["nodes"][1]["config"] == {"output": "one"}
    missing = execution_pb2.StartExecutionRequest(workflow_id=workflow.id, workflow_version=9)
    assert _code(lambda: client.executions.StartExecution(missing, timeout=10)) == grpc.StatusCode.NOT_FOUND
    inline = execution_pb2.StartExecutionRequest(definition=as_definition(linear()), workflow_version=1)
    assert (
        _code(lambda: client.executions.StartExecution(inline, timeout=10))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_list_workflows_pages_without_gaps_or_repeats(client: Client) -> None:
    made = {_create(client, linear(name=f"Paged {i}")).id for i in range(7)}
    seen: list[str] = []
    token = ""
    while True:
        reply = client.workflows.ListWorkflows(
            workflow_pb2.ListWorkflowsRequest(page_size=3, page_token=token), timeout=10
        )
        assert len(reply.workflows) <= 3
        seen.extend(w.id for w in reply.workflows)
        token = reply.next_page_token
        if not token:
            break
    assert made <= set(seen) and len(seen) == len(set(seen))
    negative = workflow_pb2.ListWorkflowsRequest(page_size=-1)
    assert (
        _code(lambda: client.workflows.ListWorkflows(negative, timeout=10))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    forged = workflow_pb2.ListWorkflowsRequest(page_token="not-a-token")
    assert (
        _code(lambda: client.workflows.ListWorkflows(forged, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_execution_status_list_and_active(client: Client) -> None:
    done = client.run(linear(name="Done"))
    waiting = client.wait(
        client.start(linear({"id": "hold", "type": "wait"}, name="Waiting")).id, until=(PAUSED,)
    )
    basic = execution_pb2.GetExecutionRequest(
        execution_id=waiting.id, view=execution_pb2.EXECUTION_VIEW_BASIC
    )
    status = client.executions.GetExecution(basic, timeout=10).execution
    assert status.status == PAUSED and status.paused_node_id == "hold" and status.current_node_id == "hold"
    assert not status.nodes and not status.HasField("definition")  # the cheap view
    no_id = execution_pb2.GetExecutionRequest(view=execution_pb2.EXECUTION_VIEW_BASIC)
    assert (
        _code(lambda: client.executions.GetExecution(no_id, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    )
    unfinished = [
        common_pb2.EXECUTION_STATUS_QUEUED,
        common_pb2.EXECUTION_STATUS_RUNNING,
        common_pb2.EXECUTION_STATUS_PAUSED,
    ]
    active = client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(statuses=unfinished, page_size=1000), timeout=10
    )
    active_ids = {e.id for e in active.executions}
    assert waiting.id in active_ids and done.id not in active_ids
    assert active.total_size == len(active_ids)
    completed = client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(statuses=[COMPLETED], page_size=1000), timeout=10
    )
    assert done.id in {e.id for e in completed.executions}
    assert all(e.status == COMPLETED for e in completed.executions)
    assert completed.total_size == len(completed.executions)
    missing = execution_pb2.GetExecutionRequest(execution_id="exec_missing")
    assert _code(lambda: client.executions.GetExecution(missing, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_list_executions_pages_newest_first(client: Client) -> None:
    workflow = _create(client, linear(name="Many"))
    ids = [
        client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_id=workflow.id), timeout=10
        ).execution.id
        for _ in range(5)
    ]
    for execution_id in ids:
        client.wait(execution_id, until=FINISHED)
    pages: list[str] = []
    token = ""
    while True:
        reply = client.executions.ListExecutions(
            execution_pb2.ListExecutionsRequest(workflow_id=workflow.id, page_size=2, page_token=token),
            timeout=10,
        )
        pages.extend(e.id for e in reply.executions)
        assert reply.total_size == 5
        token = reply.next_page_token
        if not token:
            break
    assert pages == list(reversed(ids))


def test_full_view_has_nodes_data_and_basic_does_not(client: Client) -> None:
    execution = client.run(
        linear({"id": "calc", "type": "transform", "config": {"output": "{{ input.a }}"}}, name="Views"),
        {"a": 3},
    )
    assert output(execution.data) == {
        "input": {"a": 3},
        "nodes": {"start": {"output": {"a": 3}}, "calc": {"output": 3}, "end": {"output": None}},
    }
    assert execution.node_counts.completed == 3 and execution.node_counts.total == 3
    basic = client.executions.GetExecution(
        execution_pb2.GetExecutionRequest(execution_id=execution.id, view=execution_pb2.EXECUTION_VIEW_BASIC),
        timeout=10,
    ).execution
    assert basic.status == COMPLETED and not basic.nodes and not basic.HasField("definition")


def test_node_counts_in_every_view_with_loop_iterations(client: Client) -> None:
    """NodeStatusCounts is present in BASIC and FULL views, in GetExecution, ListExecutions and the
    StartExecution answer, and counts reached loop iterations beside the top-level nodes."""
    loop = linear(
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": "input.items"},
            "body": {"nodes": [{"id": "double", "type": "transform", "config": {"output": 2}}], "edges": []},
        },
        {"id": "hold", "type": "wait"},
        name="Counted",
    )
    started = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(
            definition=as_definition(loop), input=to_struct({"items": [1, 2, 3]})
        ),
        timeout=10,
    ).execution
    # Nothing has run when the start is answered: all four top-level nodes are idle.
    assert (started.node_counts.total, started.node_counts.idle) == (4, 4)
    execution = client.wait(started.id, until=(common_pb2.EXECUTION_STATUS_PAUSED,))
    counts = execution.node_counts
    # start, each, three iterations of double: completed; hold: waiting; end: idle.
    assert (counts.completed, counts.waiting, counts.idle, counts.total) == (5, 1, 1, 7)

    def basic(execution_id: str) -> execution_pb2.Execution:
        request = execution_pb2.GetExecutionRequest(
            execution_id=execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC
        )
        return client.executions.GetExecution(request, timeout=10).execution

    assert basic(execution.id).node_counts == counts
    listed = client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(page_size=1000, view=execution_pb2.EXECUTION_VIEW_BASIC),
        timeout=10,
    )
    assert next(e for e in listed.executions if e.id == execution.id).node_counts == counts
    full = client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(page_size=1000, view=execution_pb2.EXECUTION_VIEW_FULL),
        timeout=10,
    )
    assert next(e for e in full.executions if e.id == execution.id).node_counts == counts
    # A stored workflow's run counts the same way (its definition is the workflow's version).
    workflow = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear(name="Stored"))), timeout=10
    ).workflow
    stored = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(workflow_id=workflow.id), timeout=10
    ).execution
    client.wait(stored.id)
    assert (basic(stored.id).node_counts.completed, basic(stored.id).node_counts.total) == (2, 2)
