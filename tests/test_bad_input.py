"""Odd input that must be a clear 4xx / INVALID_ARGUMENT, never an internal error: page tokens that
were not handed out (wrong keys, wrong value types, numbers out of range) on every list call, and
JSON numbers too long to read."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import (
    batch_pb2,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    execution_pb2,
    pause_point_pb2,
    workflow_pb2,
)
from tests.engine_helpers import Client, linear
from tests.support import ServerThread


def token(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


FORGED = [
    token({"t": "x", "id": "exec_1"}),
    token({"t": None, "id": "exec_1"}),
    token({"t": [1], "id": "exec_1"}),
    base64.urlsafe_b64encode(b'{"t": 1e400, "id": "x"}').decode().rstrip("="),  # t overflows to inf
    token({"t": True, "id": "exec_1"}),
    token({"t": 1.5, "id": 7}),
    token({"s": "12"}),
    token({"s": 10**30}),
    token({"t": 1.5, "id": "x", "s": 3}),
    token([1, 2]),
    "not base64 at all!",
]


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as client:
        yield client


def test_forged_page_tokens_are_invalid_argument_on_every_list(client: Client) -> None:
    workflow_id = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear())), timeout=10
    ).workflow.id
    lists: list[tuple[str, Callable[[str], Any]]] = [
        (
            "ListExecutions",
            lambda t: client.executions.ListExecutions(execution_pb2.ListExecutionsRequest(page_token=t)),
        ),
        (
            "ListExecutions of unfinished runs",
            lambda t: client.executions.ListExecutions(
                execution_pb2.ListExecutionsRequest(
                    statuses=[common_pb2.EXECUTION_STATUS_RUNNING, common_pb2.EXECUTION_STATUS_PAUSED],
                    page_token=t,
                )
            ),
        ),
        (
            "GetExecutionHistory",
            lambda t: client.executions.GetExecutionHistory(
                execution_pb2.GetExecutionHistoryRequest(execution_id=client.start(linear()).id, page_token=t)
            ),
        ),
        (
            "ListWorkflows",
            lambda t: client.workflows.ListWorkflows(workflow_pb2.ListWorkflowsRequest(page_token=t)),
        ),
        (
            "ListPausedExecutions",
            lambda t: client.workflows.ListPausedExecutions(
                workflow_pb2.ListPausedExecutionsRequest(workflow_id=workflow_id, page_token=t)
            ),
        ),
        (
            "ListBatches",
            lambda t: client.batches.ListBatches(batch_pb2.ListBatchesRequest(page_token=t)),
        ),
        (
            "ListPausePoints",
            lambda t: client.pause_points.ListPausePoints(
                pause_point_pb2.ListPausePointsRequest(page_token=t)
            ),
        ),
        (
            "ListEvents",
            lambda t: client.events.ListEvents(event_pb2.ListEventsRequest(page_token=t)),
        ),
    ]
    for name, call in lists:
        for forged in FORGED:
            with pytest.raises(grpc.RpcError) as caught:
                call(forged)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (
                name,
                forged,
                caught.value.details(),
            )
            assert "page_token" in str(caught.value.details()), (name, forged)


def test_numbers_too_long_to_read_are_400(server: ServerThread, client: Client) -> None:
    workflow_id = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear())), timeout=10
    ).workflow.id
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        digits = "1" + "0" * 5000  # more digits than Python turns into an int
        for path in ("/api/workflows/execute", f"/v1/workflows/{workflow_id}/rotate-secret", "/v1/workflows"):
            answer = http.post(
                path, content=f'{{"n": {digits}}}', headers={"content-type": "application/json"}
            )
            assert answer.status_code == 400, (path, answer.text)
            assert "too many digits" in answer.text
        huge = http.post(
            f"/v1/workflows/{workflow_id}/rotate-secret",
            content='{"overlapSeconds": 1' + "0" * 400 + "}",
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 400 and "between 0 and" in huge.text
        forged = http.get(f"/api/workflows/{workflow_id}/paused", params={"pageToken": FORGED[0]})
        assert forged.status_code == 400 and "page_token" in forged.text.lower().replace(
            "pagetoken", "page_token"
        )


def _raw_call(channel: grpc.Channel, method: str, body: bytes, *, stream: bool = False) -> grpc.RpcError:
    """Send bytes as the request of `method` and answer the error the server gave."""
    identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
    try:
        if stream:
            call = channel.unary_stream(method, request_serializer=identity, response_deserializer=identity)
            list(call(body, timeout=10))
        else:
            channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)(
                body, timeout=10
            )
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{method} accepted {body[:40]!r}")


def _nested_struct(depth: int) -> bytes:
    """A Struct value nested `depth` levels: {"a": {"a": ... {}}} as raw bytes (the Python runtime would
    refuse to build it, but any client can send it)."""
    inner = b""
    for _ in range(depth):
        value = b"\x2a" + _varint(len(inner)) + inner  # Value.struct_value = 5
        entry = b"\x0a\x01a" + b"\x12" + _varint(len(value)) + value  # FieldsEntry key, value
        inner = b"\x0a" + _varint(len(entry)) + entry  # Struct.fields = 1
    return inner


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


@pytest.mark.parametrize(
    ("method", "body", "stream"),
    [
        # GetExecutionRequest.execution_id = "\xff": not UTF-8.
        ("/runctl.v1.ExecutionService/GetExecution", b"\x0a\x01\xff", False),
        # StartExecutionRequest.input (field 4) nested 10,000 levels deep.
        (
            "/runctl.v1.ExecutionService/StartExecution",
            b"\x22" + _varint(len(s := _nested_struct(10_000))) + s,
            False,
        ),
        # A truncated message: a length prefix with nothing after it.
        ("/runctl.v1.WorkflowService/GetWorkflow", b"\x0a\x05ab", False),
        # A server stream: WatchExecutionRequest.execution_id not UTF-8.
        ("/runctl.v1.ExecutionService/WatchExecution", b"\x0a\x02\xc3\x28", True),
    ],
)
def test_undecodable_requests_are_invalid_argument(
    client: Client, method: str, body: bytes, stream: bool
) -> None:
    error = _raw_call(client.channel, method, body, stream=stream)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    assert "could not be decoded" in (error.details() or "")
    # The server goes on answering.
    assert client.channel is not None
    with pytest.raises(grpc.RpcError) as missing:
        client.executions.GetExecution(
            execution_pb2.GetExecutionRequest(execution_id="exec_missing"), timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("filler", ["x", "\u00e9", "\U0001f600"])
def test_an_error_echoing_a_huge_value_still_reaches_the_client(client: Client, filler: str) -> None:
    """gRPC clients drop a response whose trailers pass 16 KB; the status cuts what it echoes."""
    huge = filler * 20_000
    with pytest.raises(grpc.RpcError) as missing:
        client.executions.GetExecution(execution_pb2.GetExecutionRequest(execution_id=huge), timeout=10)
    assert missing.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    status = rpc_status.from_call(missing.value)
    assert status is not None and status.details
    assert "more characters" in (missing.value.details() or "")
    with pytest.raises(grpc.RpcError) as rotated:
        client.workflows.RotateWebhookSecret(
            workflow_pb2.RotateWebhookSecretRequest(workflow_id=huge), timeout=10
        )
    assert rotated.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
RUNNING = common_pb2.EXECUTION_STATUS_RUNNING
# A list call with (filters, page token).
PageCall = Callable[[dict[str, Any], str], Any]


@dataclass
class Paged:
    """Two of everything each list pages over, so that a page of one holds a next-page token."""

    flow: str  # a stored workflow with two paused runs and two batches
    runs: list[str]  # two paused runs of an inline workflow


@pytest.fixture(scope="module")
def paged(client: Client) -> Paged:
    waits = linear({"id": "hold", "type": "wait"})
    flow = client.create_workflow(waits).id
    client.create_workflow(waits)
    runs = [client.start(waits).id for _ in range(2)]
    stored = [client.start(workflow_id=flow).id for _ in range(2)]
    for execution_id in [*runs, *stored]:
        client.wait(execution_id, until=(PAUSED,))
    for _ in range(2):
        client.start_batch(workflow_ids=[flow])
    return Paged(flow, runs)


def page_calls(client: Client, paged: Paged) -> dict[str, tuple[PageCall, dict[str, Any], dict[str, Any]]]:
    """Each list: (call, first filters, other filters)."""
    runs, flow = paged.runs, paged.flow
    return {
        "ListExecutions": (
            lambda f, t: client.executions.ListExecutions(
                execution_pb2.ListExecutionsRequest(page_size=1, page_token=t, **f), timeout=10
            ),
            {"statuses": [PAUSED, RUNNING]},
            {"statuses": [PAUSED]},
        ),
        "GetExecutionHistory": (
            lambda f, t: client.executions.GetExecutionHistory(
                execution_pb2.GetExecutionHistoryRequest(page_size=1, page_token=t, **f), timeout=10
            ),
            {"execution_id": runs[0]},
            {"execution_id": runs[1]},
        ),
        "ListWorkflows": (
            lambda f, t: client.workflows.ListWorkflows(
                workflow_pb2.ListWorkflowsRequest(page_size=1, page_token=t, **f), timeout=10
            ),
            {},
            {"statuses": [workflow_pb2.WORKFLOW_STATUS_ACTIVE]},
        ),
        "ListPausedExecutions": (
            lambda f, t: client.workflows.ListPausedExecutions(
                workflow_pb2.ListPausedExecutionsRequest(workflow_id=flow, page_size=1, page_token=t, **f),
                timeout=10,
            ),
            {},
            {"statuses": [pause_point_pb2.RESUME_STATUS_PAUSED]},
        ),
        "ListBatches": (
            lambda f, t: client.batches.ListBatches(
                batch_pb2.ListBatchesRequest(page_size=1, page_token=t, **f), timeout=10
            ),
            {},
            {"statuses": [batch_resource_pb2.BATCH_STATUS_RUNNING]},
        ),
        "ListPausePoints": (
            lambda f, t: client.pause_points.ListPausePoints(
                pause_point_pb2.ListPausePointsRequest(page_size=1, page_token=t, **f), timeout=10
            ),
            {"resume_statuses": [pause_point_pb2.RESUME_STATUS_PAUSED]},
            {"workflow_id": flow, "resume_statuses": [pause_point_pb2.RESUME_STATUS_PAUSED]},
        ),
        "ListEvents": (
            lambda f, t: client.events.ListEvents(
                event_pb2.ListEventsRequest(page_size=1, page_token=t, **f), timeout=10
            ),
            {"execution_id": runs[0]},
            {"execution_id": runs[1]},
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "ListExecutions",
        "GetExecutionHistory",
        "ListWorkflows",
        "ListPausedExecutions",
        "ListBatches",
        "ListPausePoints",
        "ListEvents",
    ],
)
def test_a_page_token_holds_to_the_filters_it_was_made_with(client: Client, paged: Paged, name: str) -> None:
    """AIP-158: the next page of one list, asked with other filters, is INVALID_ARGUMENT rather than a
    page of another list; with the same filters the token works."""
    call, first, other = page_calls(client, paged)[name]
    token = call(first, "").next_page_token
    assert token
    assert call(first, token) is not None  # the same filters: the next page
    with pytest.raises(grpc.RpcError) as caught:
        call(other, token)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert "other filters" in str(caught.value.details())


def test_a_status_filter_is_a_set_so_reordering_it_keeps_the_page_token(client: Client, paged: Paged) -> None:
    token = page_calls(client, paged)["ListExecutions"][0](
        {"statuses": [PAUSED, RUNNING]}, ""
    ).next_page_token
    reordered = execution_pb2.ListExecutionsRequest(statuses=[RUNNING, PAUSED], page_size=1, page_token=token)
    assert client.executions.ListExecutions(reordered, timeout=10) is not None


def test_numbers_json_cannot_carry_and_durations_out_of_range_are_invalid_argument(client: Client) -> None:
    """NaN and infinities in a run's input or a resume's data, and a secret overlap of ±2^63 seconds,
    are the caller's INVALID_ARGUMENT naming the field, never INTERNAL."""
    from google.protobuf import duration_pb2, struct_pb2

    for bad in (float("nan"), float("inf"), float("-inf")):
        data = struct_pb2.Struct()
        data.fields["n"].number_value = bad
        with pytest.raises(grpc.RpcError) as caught:
            client.executions.StartExecution(
                execution_pb2.StartExecutionRequest(definition=as_definition(linear()), input=data),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert "input" in (caught.value.details() or "")
        # The same number inside a node's config of an inline definition.
        document = as_definition(linear())
        document.nodes[0].config.fields["n"].number_value = bad
        with pytest.raises(grpc.RpcError) as caught:
            client.executions.StartExecution(
                execution_pb2.StartExecutionRequest(definition=document), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert "definition" in (caught.value.details() or "")
    workflow_id = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear())), timeout=10
    ).workflow.id
    for seconds in (2**63 - 1, -(2**63)):
        with pytest.raises(grpc.RpcError) as caught:
            client.workflows.RotateWebhookSecret(
                workflow_pb2.RotateWebhookSecretRequest(
                    workflow_id=workflow_id, overlap=duration_pb2.Duration(seconds=seconds)
                ),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
