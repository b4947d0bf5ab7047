"""Enum filters of list calls follow one rule (common.proto): repeated, plural, empty = any, and an
UNSPECIFIED value in the list is INVALID_ARGUMENT with a field violation naming its position."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import (
    batch_pb2,
    batch_pb2_grpc,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    pause_point_pb2,
    pause_point_pb2_grpc,
    workflow_pb2,
)
from tests.engine_helpers import Client, linear, serving_client


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with serving_client("sqlite", tmp_path_factory) as client:
        yield client


def create(client: Client, document: dict[str, Any]) -> str:
    request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(document))
    return client.workflows.CreateWorkflow(request, timeout=10).workflow.id


def violations(call: Callable[[], Any]) -> list[str]:
    """The fields of the violations of a call refused with INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    status = rpc_status.from_call(caught.value)
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields += [violation.field for violation in bad_request.field_violations]
    return fields


def test_unspecified_in_an_enum_filter_is_invalid_argument(client: Client) -> None:
    workflow_id = create(client, linear())
    points = pause_point_pb2_grpc.PausePointServiceStub(client.channel)
    batches = batch_pb2_grpc.BatchServiceStub(client.channel)
    events = event_pb2_grpc.EventServiceStub(client.channel)
    running = common_pb2.EXECUTION_STATUS_RUNNING
    calls: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: client.executions.ListExecutions(
                execution_pb2.ListExecutionsRequest(
                    statuses=[running, common_pb2.EXECUTION_STATUS_UNSPECIFIED]
                ),
                timeout=10,
            ),
            "statuses[1]",
        ),
        (
            lambda: client.workflows.ListWorkflows(
                workflow_pb2.ListWorkflowsRequest(statuses=[workflow_pb2.WORKFLOW_STATUS_UNSPECIFIED]),
                timeout=10,
            ),
            "statuses[0]",
        ),
        (
            lambda: client.workflows.ListPausedExecutions(
                workflow_pb2.ListPausedExecutionsRequest(
                    workflow_id=workflow_id, statuses=[pause_point_pb2.RESUME_STATUS_UNSPECIFIED]
                ),
                timeout=10,
            ),
            "statuses[0]",
        ),
        (
            lambda: points.ListPausePoints(
                pause_point_pb2.ListPausePointsRequest(reasons=[common_pb2.PAUSE_REASON_UNSPECIFIED]),
                timeout=10,
            ),
            "reasons[0]",
        ),
        (
            lambda: points.ListPausePoints(
                pause_point_pb2.ListPausePointsRequest(
                    resume_statuses=[pause_point_pb2.RESUME_STATUS_PAUSED, 99]  # type: ignore[list-item]
                ),
                timeout=10,
            ),
            "resume_statuses[1]",
        ),
        (
            lambda: batches.ListBatches(
                batch_pb2.ListBatchesRequest(statuses=[batch_resource_pb2.BATCH_STATUS_UNSPECIFIED]),
                timeout=10,
            ),
            "statuses[0]",
        ),
        (
            lambda: events.ListEvents(
                event_pb2.ListEventsRequest(types=[event_pb2.EVENT_TYPE_UNSPECIFIED]), timeout=10
            ),
            "types[0]",
        ),
        (
            lambda: next(
                iter(
                    events.StreamEvents(
                        event_pb2.StreamEventsRequest(types=[event_pb2.EVENT_TYPE_UNSPECIFIED]), timeout=10
                    )
                )
            ),
            "types[0]",
        ),
    ]
    for call, field in calls:
        assert violations(call) == [field]


def test_an_enum_filter_matches_any_of_its_values(client: Client) -> None:
    active = create(client, linear(name="stays active"))
    paused = create(client, linear(name="paused"))
    client.workflows.PauseWorkflow(workflow_pb2.PauseWorkflowRequest(workflow_id=paused), timeout=10)

    def listed(*statuses: workflow_pb2.WorkflowStatus.ValueType) -> set[str]:
        request = workflow_pb2.ListWorkflowsRequest(statuses=statuses, page_size=1000)
        return {workflow.id for workflow in client.workflows.ListWorkflows(request, timeout=10).workflows}

    assert {active, paused} <= listed()
    assert active in listed(workflow_pb2.WORKFLOW_STATUS_ACTIVE)
    assert paused not in listed(workflow_pb2.WORKFLOW_STATUS_ACTIVE)
    assert paused in listed(workflow_pb2.WORKFLOW_STATUS_PAUSED)
    assert active not in listed(workflow_pb2.WORKFLOW_STATUS_PAUSED)
    assert {active, paused} <= listed(
        workflow_pb2.WORKFLOW_STATUS_ACTIVE, workflow_pb2.WORKFLOW_STATUS_PAUSED
    )
    assert not {active, paused} & listed(workflow_pb2.WORKFLOW_STATUS_CANCELLED)


def test_runs_filtered_by_creation_time_page_with_the_filter(client: Client) -> None:
    workflow_id = create(client, linear(name="timed"))

    def start() -> str:
        request = execution_pb2.StartExecutionRequest(workflow_id=workflow_id)
        return str(client.executions.StartExecution(request, timeout=10).execution.id)

    first = [start() for _ in range(3)]
    # A microsecond after the third run was created (more than a stored time's rounding).
    after = timestamp_pb2.Timestamp()
    after.FromNanoseconds(client.get(first[-1]).create_time.ToNanoseconds() + 1000)
    later = [start() for _ in range(2)]

    def ids(**filters: Any) -> list[str]:
        found: list[str] = []
        token = ""
        while True:
            request = execution_pb2.ListExecutionsRequest(
                workflow_id=workflow_id, page_size=2, page_token=token, **filters
            )
            answer = client.executions.ListExecutions(request, timeout=10)
            found += [execution.id for execution in answer.executions]
            token = answer.next_page_token
            if not token:
                return found

    assert ids(create_time_after=after) == later[::-1]
    assert ids(create_time_before=after) == first[::-1]
    assert ids(create_time_after=after, create_time_before=after) == []
    assert ids() == [*later[::-1], *first[::-1]]
    # A token belongs to its filters: reused with another time filter it is refused.
    token = client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(workflow_id=workflow_id, page_size=1), timeout=10
    ).next_page_token
    assert violations(
        lambda: client.executions.ListExecutions(
            execution_pb2.ListExecutionsRequest(
                workflow_id=workflow_id, page_size=1, page_token=token, create_time_after=after
            ),
            timeout=10,
        )
    ) == ["page_token"]
