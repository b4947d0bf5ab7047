"""Workflow pause, resume and cancel (the workflow pause API) and paused executions (the paused executions
API) over the real gRPC API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, pause_point_pb2, workflow_pb2
from tests.engine_helpers import DATABASE_KINDS, Client, linear, node_reached, node_status, serving_client

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
QUEUED = common_pb2.EXECUTION_STATUS_QUEUED
RUNNING = common_pb2.EXECUTION_STATUS_RUNNING
STOPPED = common_pb2.EXECUTION_STATUS_STOPPED
PUBLIC = "https://runctl.example.test"


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with serving_client(request.param, tmp_path_factory, public_base_url=PUBLIC) as client:
        yield client


def create(client: Client, document: dict[str, Any]) -> str:
    reply = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(document)), timeout=10
    )
    return str(reply.workflow.id)


def start(client: Client, workflow_id: str) -> str:
    reply = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(workflow_id=workflow_id), timeout=10
    )
    return str(reply.execution.id)


def pause(client: Client, workflow_id: str) -> workflow_pb2.Workflow:
    request = workflow_pb2.PauseWorkflowRequest(workflow_id=workflow_id, reason="carrier incident")
    return client.workflows.PauseWorkflow(request, timeout=10).workflow


def resume(client: Client, workflow_id: str) -> workflow_pb2.Workflow:
    request = workflow_pb2.ResumeWorkflowRequest(workflow_id=workflow_id)
    return client.workflows.ResumeWorkflow(request, timeout=10).workflow


def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def delay_then_log(seconds: float) -> dict[str, Any]:
    return linear(
        {"id": "countdown", "type": "delay", "config": {"seconds": seconds}},
        {"id": "call", "type": "log", "config": {"message": "calling"}},
    )


def test_a_delay_that_ends_during_the_pause_goes_on_at_resume(client: Client) -> None:
    workflow_id = create(client, delay_then_log(2))
    execution_id = start(client, workflow_id)
    client.wait(execution_id, until=(RUNNING,))
    assert pause(client, workflow_id).status == workflow_pb2.WORKFLOW_STATUS_PAUSED
    # The delay keeps counting and completes at ~2 s; the node after it must not start.
    held = client.wait(execution_id, until=(PAUSED,), timeout=5)
    assert held.pause_reason == common_pb2.PAUSE_REASON_WORKFLOW_PAUSED

    during = node_reached(client, execution_id, "countdown")
    assert during.status == PAUSED
    assert node_status(during).get("call", "idle") == "idle"
    resumed_at = time.time()
    assert resume(client, workflow_id).status == workflow_pb2.WORKFLOW_STATUS_ACTIVE
    done = client.wait(execution_id, timeout=5)
    assert done.status == COMPLETED
    # Not a full delay later: within a fraction of a second of the resume.
    assert done.end_time.ToMicroseconds() / 1e6 - resumed_at < 0.5


def test_runs_started_while_paused_stay_queued_until_resume(client: Client) -> None:
    workflow_id = create(client, delay_then_log(0))
    pause(client, workflow_id)
    execution_id = start(client, workflow_id)
    # A run of another workflow, started after it and finished: the scheduler has taken up the
    # queue since, and passed this one over.
    client.run(linear(name="after"))
    queued = client.get(execution_id)
    assert queued.status == QUEUED
    assert set(node_status(queued).values()) == {"idle"}
    resume(client, workflow_id)
    assert client.wait(execution_id).status == COMPLETED


def test_pause_errors(client: Client) -> None:
    workflow_id = create(client, linear())
    assert pause(client, workflow_id).HasField("pause_time")
    assert not resume(client, workflow_id).HasField("pause_time")
    missing = workflow_pb2.PauseWorkflowRequest(workflow_id="wf_missing")
    assert code_of(lambda: client.workflows.PauseWorkflow(missing)) == grpc.StatusCode.NOT_FOUND
    empty = workflow_pb2.PauseWorkflowRequest()
    assert code_of(lambda: client.workflows.PauseWorkflow(empty)) == grpc.StatusCode.INVALID_ARGUMENT
    workflow_id = create(client, linear())
    pause(client, workflow_id)
    assert code_of(lambda: pause(client, workflow_id)) == grpc.StatusCode.FAILED_PRECONDITION
    resume(client, workflow_id)
    assert code_of(lambda: resume(client, workflow_id)) == grpc.StatusCode.FAILED_PRECONDITION


def test_cancel_stops_its_runs_and_refuses_new_ones(client: Client) -> None:
    workflow_id = create(client, delay_then_log(600))
    running = start(client, workflow_id)
    client.wait(running, until=(RUNNING,))
    pause(client, workflow_id)
    queued = start(client, workflow_id)
    cancel = workflow_pb2.CancelWorkflowRequest(workflow_id=workflow_id, reason="campaign over")
    reply = client.workflows.CancelWorkflow(cancel, timeout=10)
    assert reply.workflow.status == workflow_pb2.WORKFLOW_STATUS_CANCELLED
    assert client.get(running).status == STOPPED
    assert client.get(queued).status == STOPPED
    assert code_of(lambda: start(client, workflow_id)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: pause(client, workflow_id)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: client.workflows.CancelWorkflow(cancel)) == grpc.StatusCode.FAILED_PRECONDITION


def test_paused_executions_follow_the_documented_model(client: Client) -> None:
    approval = {
        "id": "approve",
        "type": "approval",
        "config": {"title": "Approval Required", "message": "Please review this request"},
    }
    workflow_id = create(client, linear(approval))
    first = start(client, workflow_id)
    second = start(client, workflow_id)
    for execution_id in (first, second):
        client.wait(execution_id, until=(PAUSED,))
    client.executions.ControlPause(
        execution_pb2.ControlPauseRequest(execution_id=first, action=execution_pb2.PAUSE_ACTION_CONTINUE),
        timeout=10,
    )
    client.wait(first)

    def listed(*statuses: pause_point_pb2.ResumeStatus.ValueType) -> list[pause_point_pb2.PausedExecution]:
        request = workflow_pb2.ListPausedExecutionsRequest(workflow_id=workflow_id, statuses=statuses)
        return list(client.workflows.ListPausedExecutions(request, timeout=10).paused_executions)

    everything = {item.execution_id: item for item in listed()}
    assert set(everything) == {first, second}
    waiting = everything[second]
    assert waiting.status == pause_point_pb2.RESUME_STATUS_PAUSED
    assert (waiting.total_pause_count, waiting.resumed_count) == (1, 0)
    (point,) = waiting.pause_points
    assert point.node_id == "approve"
    assert point.response.display_data.title == "Approval Required"
    api_url, _, api_token = point.resume_links.api_url.partition("?token=")
    ui_url, _, ui_token = point.resume_links.ui_url.partition("?token=")
    assert api_url == f"{PUBLIC}/api/resume/{workflow_id}/{second}/{point.context_id}"
    assert ui_url == f"{PUBLIC}/resume/{workflow_id}/{second}"
    assert api_token and api_token == ui_token  # one credential for the pause point, in both links
    done = everything[first]
    assert done.status == pause_point_pb2.RESUME_STATUS_RESUMED
    assert (done.total_pause_count, done.resumed_count) == (1, 1)
    assert [i.execution_id for i in listed(pause_point_pb2.RESUME_STATUS_PAUSED)] == [second]
    assert [i.execution_id for i in listed(pause_point_pb2.RESUME_STATUS_RESUMED)] == [first]
    both = listed(pause_point_pb2.RESUME_STATUS_PAUSED, pause_point_pb2.RESUME_STATUS_RESUMED)
    assert {i.execution_id for i in both} == {first, second}
    assert listed(pause_point_pb2.RESUME_STATUS_EXPIRED, pause_point_pb2.RESUME_STATUS_CANCELLED) == []
    page = client.workflows.ListPausedExecutions(
        workflow_pb2.ListPausedExecutionsRequest(workflow_id=workflow_id, page_size=1), timeout=10
    )
    assert len(page.paused_executions) == 1 and page.next_page_token
    rest = client.workflows.ListPausedExecutions(
        workflow_pb2.ListPausedExecutionsRequest(workflow_id=workflow_id, page_token=page.next_page_token),
        timeout=10,
    )
    assert {page.paused_executions[0].execution_id, rest.paused_executions[0].execution_id} == {first, second}
    missing = workflow_pb2.ListPausedExecutionsRequest(workflow_id="wf_missing")
    assert code_of(lambda: client.workflows.ListPausedExecutions(missing)) == grpc.StatusCode.NOT_FOUND


def test_paused_executions_page_in_order_with_a_status_filter(client: Client) -> None:
    """Pages of every size, filtered or not, join up to the whole list: newest pause first, each run
    once, each with its status; runs with two pause points (one answered) count as paused."""
    two = {
        "name": "two approvals",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "a", "type": "approval"},
            {"id": "b", "type": "approval"},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "a"},
            {"from": "start", "to": "b"},
            {"from": "a", "to": "end"},
            {"from": "b", "to": "end"},
        ],
    }
    workflow_id = create(client, two)
    runs = []
    for _ in range(7):
        runs.append(start(client, workflow_id))
        client.wait(runs[-1], until=(PAUSED,))
    answered = {runs[1], runs[3], runs[4]}  # both pause points resumed
    half = {runs[5]}  # one of two resumed: still paused
    for run in answered | half:
        points = sorted(client.get(run).pause_points, key=lambda p: p.node_id)
        for point in points if run in answered else points[:1]:
            client.executions.ResumePausePoint(
                execution_pb2.ResumePausePointRequest(context_id=point.context_id), timeout=10
            )
    for run in answered:
        client.wait(run)

    def pages(size: int, *statuses: pause_point_pb2.ResumeStatus.ValueType) -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []
        token = ""
        while True:
            request = workflow_pb2.ListPausedExecutionsRequest(
                workflow_id=workflow_id, statuses=statuses, page_size=size, page_token=token
            )
            reply = client.workflows.ListPausedExecutions(request, timeout=10)
            assert len(reply.paused_executions) <= size
            seen += [(item.execution_id, item.status) for item in reply.paused_executions]
            token = reply.next_page_token
            if not token:
                return seen

    newest_first = list(reversed(runs))
    paused, resumed = pause_point_pb2.RESUME_STATUS_PAUSED, pause_point_pb2.RESUME_STATUS_RESUMED
    expected = [(run, resumed if run in answered else paused) for run in newest_first]
    for size in (1, 2, 3, 7, 50):
        assert pages(size) == expected
        assert pages(size, paused, resumed) == expected
        assert pages(size, paused) == [item for item in expected if item[1] == paused]
        assert pages(size, resumed) == [item for item in expected if item[1] == resumed]
    assert pages(2, pause_point_pb2.RESUME_STATUS_EXPIRED) == []
    half_item = next(
        item
        for item in client.workflows.ListPausedExecutions(
            workflow_pb2.ListPausedExecutionsRequest(workflow_id=workflow_id), timeout=10
        ).paused_executions
        if item.execution_id == runs[5]
    )
    assert (half_item.total_pause_count, half_item.resumed_count) == (2, 1)


def test_rotating_the_secret_answers_a_new_one(client: Client) -> None:
    created = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear())), timeout=10
    ).workflow
    rotated = client.workflows.RotateWebhookSecret(
        workflow_pb2.RotateWebhookSecretRequest(workflow_id=created.id), timeout=10
    ).workflow
    assert rotated.webhook_secret and rotated.webhook_secret != created.webhook_secret


def test_runs_pause_after_their_workflow_in_the_event_log(client: Client) -> None:
    """The WORKFLOW_PAUSED event comes before every EXECUTION_PAUSED it causes, also for runs whose
    nodes finish while the pause is being committed (cause before effect in the log)."""
    from runctl.v1 import event_pb2, event_pb2_grpc

    steps = [{"id": f"d{i}", "type": "delay", "config": {"seconds": 0.01}} for i in range(40)]
    workflow_id = create(client, linear(*steps))
    runs = [start(client, workflow_id) for _ in range(12)]
    for run in runs:  # every run under way, between delays
        client.wait(run, until=(RUNNING, COMPLETED))
    pause(client, workflow_id)
    for run in runs:
        client.wait(run, until=(PAUSED, COMPLETED), timeout=20)
    events = (
        event_pb2_grpc.EventServiceStub(client.channel)
        .ListEvents(
            event_pb2.ListEventsRequest(
                workflow_id=workflow_id,
                types=[event_pb2.EVENT_TYPE_WORKFLOW_PAUSED, event_pb2.EVENT_TYPE_EXECUTION_PAUSED],
                page_size=1000,
            ),
            timeout=10,
        )
        .events
    )
    (cause,) = [e for e in events if e.type == event_pb2.EVENT_TYPE_WORKFLOW_PAUSED]
    effects = [e for e in events if e.type == event_pb2.EVENT_TYPE_EXECUTION_PAUSED]
    assert effects, "no run paused"
    early = [(e.execution_id, e.sequence) for e in effects if e.sequence < cause.sequence]
    assert not early, f"runs paused before their workflow (at {cause.sequence}): {early}"
    resume(client, workflow_id)
    for run in runs:
        assert client.wait(run, until=(COMPLETED,), timeout=30).status == COMPLETED
