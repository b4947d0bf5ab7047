"""Live: the ErrorInfo of real calls carries a reason that is a runctl.v1.ErrorReason value, named
by the rule of error.proto (the value's name without "ERROR_REASON_")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.v1 import error_pb2, execution_pb2
from runctl_server.api.services import SERVICES
from tests.engine_helpers import Client, linear
from tests.support import ServerThread


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as client:
        yield client


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, f"{error.code()} without a google.rpc.Status: {error.details()}"
    infos = [detail for detail in status.details if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, f"{error.code()} {error.details()}: {len(infos)} ErrorInfo"
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    return info


def enum_value(error: grpc.RpcError) -> error_pb2.ErrorReason.ValueType:
    """The ErrorReason value the error names; fails unless domain and reason follow the contract."""
    info = error_info(error)
    assert info.domain == "runctl"
    value = error_pb2.ErrorReason.Value("ERROR_REASON_" + info.reason)  # ValueError when unknown
    assert value != error_pb2.ERROR_REASON_UNSPECIFIED, error.details()
    return value


def failure(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_every_rpc_refusing_an_empty_request_names_an_enum_reason(client: Client) -> None:
    seen: dict[str, str] = {}
    for spec in SERVICES:
        service = spec.messages.DESCRIPTOR.services_by_name[spec.name]
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            request = message_factory.GetMessageClass(method.input_type)()
            serialize = type(request).SerializeToString
            try:
                if method.server_streaming:
                    stream: Any = client.channel.unary_stream(path, request_serializer=serialize)(
                        request, timeout=5
                    )
                    next(iter(stream), None)
                    stream.cancel()
                else:
                    client.channel.unary_unary(path, request_serializer=serialize)(request, timeout=5)
            except grpc.RpcError as error:
                if error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    continue  # ended by this test, not refused by the server
                seen[path] = error_pb2.ErrorReason.Name(enum_value(error))
    # Most RPCs refuse an empty request (a required id); each said why in the contract's words.
    assert len(seen) >= 20, seen
    assert seen["/runctl.v1.ExecutionService/GetExecution"] == "ERROR_REASON_FIELD_REQUIRED"


def test_control_calls_answer_the_reasons_their_comments_name(client: Client) -> None:
    missing = failure(
        lambda: client.executions.GetExecution(
            execution_pb2.GetExecutionRequest(execution_id="exec_00000000000000000000"), timeout=10
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert enum_value(missing) == error_pb2.ERROR_REASON_EXECUTION_NOT_FOUND

    running = client.start(linear({"id": "hold", "type": "delay", "config": {"seconds": 60}})).id
    not_paused = failure(
        lambda: client.executions.ControlPause(
            execution_pb2.ControlPauseRequest(
                execution_id=running, action=execution_pb2.PAUSE_ACTION_CONTINUE
            ),
            timeout=10,
        )
    )
    assert not_paused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert enum_value(not_paused) == error_pb2.ERROR_REASON_EXECUTION_NOT_PAUSED

    client.executions.StopExecution(execution_pb2.StopExecutionRequest(execution_id=running), timeout=10)
    client.wait(running)
    ended = failure(
        lambda: client.executions.StopExecution(
            execution_pb2.StopExecutionRequest(execution_id=running), timeout=10
        )
    )
    assert ended.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert enum_value(ended) == error_pb2.ERROR_REASON_EXECUTION_ENDED
    assert dict(error_info(ended).metadata) == {"status": "stopped"}
