"""Property-based fuzzing of every RPC: requests generated from the message descriptors (raw enum numbers,
NaN and infinities, integer extremes, unicode, nesting, oversized fields, truncated and corrupted bytes,
mutated workflow documents) never answer INTERNAL or UNKNOWN, never hang, and whatever was accepted
leaves every read and stream that shows it answering.

CI runs a bounded number of examples per RPC; `RUNCTL_FUZZ_EXAMPLES=500 make test
PYTEST_ARGS=tests/test_fuzz.py` runs longer."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor, json_format, message, message_factory, struct_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runctl.messages import as_definition
from runctl.v1 import (
    batch_pb2,
    batch_pb2_grpc,
    common_pb2,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    pause_point_pb2,
    pause_point_pb2_grpc,
    worker_pb2,
    workflow_pb2,
)
from tests.engine_helpers import Client, linear
from tests.support import ServerThread

EXAMPLES = int(os.environ.get("RUNCTL_FUZZ_EXAMPLES", "25"))
CALL_TIMEOUT = 10.0
STREAM_TIMEOUT = 1.5
# Codes a request can never earn: a bug in runctl (INTERNAL, UNKNOWN) or a hang (a unary deadline).
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
FD = descriptor.FieldDescriptor

SERVICES = [
    service
    for module in (execution_pb2, workflow_pb2, batch_pb2, event_pb2, pause_point_pb2, worker_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
]
METHODS = [method for service in SERVICES for method in service.methods]

INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
HOSTILE_STRINGS = [
    "",
    " ",
    "../../etc/passwd",
    "/etc/passwd",
    "a" * 300,
    "x" * 20_000,
    "\x00",
    "\u202e\ufeff",
    "😀" * 50,
    "{{ input }}",
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    "%s%n",
    "*",
    "-1",
    "1e308",
    "NaN",
    "null",
]
TIMES = [0, 1, -1, 253402300799, 253402300800, -62135596800, -62135596801, 2**62, -(2**62)]
NANOS = [0, 1, -1, 999_999_999, 1_000_000_000, -(2**31)]


@dataclass
class Known:
    """Ids of real objects in the server, so generated requests also reach past the lookups."""

    executions: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    pause_points: list[str] = field(default_factory=list)

    def ids_for(self, name: str) -> list[str]:
        if "execution" in name:
            return self.executions
        if "workflow" in name:
            return self.workflows
        if "batch" in name:
            return self.batches
        if "pause_point" in name or "context" in name:
            return self.pause_points
        return self.executions + self.workflows + self.batches + self.pause_points


# -- values ------------------------------------------------------------------------------------------

floats = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 0.0, 2.0**63, 1e19]),
    st.floats(allow_nan=True, allow_infinity=True),
)
texts = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_STRINGS))


def deep(levels: int, leaf: Any) -> Any:
    value = leaf
    for index in range(levels):
        value = {"k": value} if index % 2 else [value]
    return value


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), floats, st.integers(-(2**70), 2**70), texts),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
) | st.builds(deep, st.sampled_from([50, 99, 150]), st.sampled_from([1, math.nan, "x"]))


def set_value(target: struct_pb2.Value, value: Any) -> None:
    """Like the library's own conversion, but NaN, infinities and integers past 2^53 go through
    (a hostile client is not limited to well-behaved encoders)."""
    if value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, (int, float)):
        target.number_value = float(value)
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, list):
        target.list_value.SetInParent()
        for item in value:
            set_value(target.list_value.values.add(), item)
    else:
        target.struct_value.SetInParent()
        for key, item in value.items():
            set_value(target.struct_value.fields[key], item)


def struct_of(value: Any) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    items = value.items() if isinstance(value, dict) else [("value", value)]
    for key, item in items:
        set_value(result.fields[key], item)
    return result


# -- workflow documents: valid templates with one hostile leaf ---------------------------------------

TEMPLATES: list[dict[str, Any]] = [
    linear({"id": "hold", "type": "wait", "config": {"timeoutSeconds": 30, "onTimeout": "branch"}}),
    linear({"id": "nap", "type": "delay", "config": {"seconds": 2}}),
    linear({"id": "nap", "type": "delay", "config": {"until": "2030-01-01T00:00:00Z"}}),
    linear({"id": "ask", "type": "approval", "config": {"title": "Ship?", "timeoutSeconds": 60}}),
    linear({"id": "say", "type": "transform", "config": {"output": "{{ input.name }}"}}),
    linear({"id": "log", "type": "log", "config": {"message": "hi {{ input }}", "level": "info"}}),
    linear({"id": "sub", "type": "subworkflow", "config": {"path": "hello.json"}}),
    linear({"id": "job", "type": "task", "config": {"queue": "fuzz", "timeoutSeconds": 30}}),
    linear(
        {
            "id": "rows",
            "type": "for_each",
            "config": {"items": "input.rows", "concurrency": 2},
            "body": {"nodes": [{"id": "cell", "type": "transform", "config": {"output": 1}}], "edges": []},
        }
    ),
]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    if isinstance(document, dict):
        return {
            key: replaced(item, path[1:], value) if key == path[0] else item for key, item in document.items()
        }
    return [
        replaced(item, path[1:], value) if index == path[0] else item for index, item in enumerate(document)
    ]


@st.composite
def mutated_definitions(draw: st.DrawFn) -> workflow_pb2.WorkflowDefinition:
    template = draw(st.sampled_from(TEMPLATES))
    path = draw(st.sampled_from(list(leaves(template["nodes"]))))
    document = {**template, "nodes": replaced(template["nodes"], path, draw(json_values))}
    definition = workflow_pb2.WorkflowDefinition(name="fuzz")
    for node in document["nodes"]:
        if not isinstance(node, dict):
            continue
        added = definition.nodes.add()
        for key, value in node.items():
            if key in ("config", "body") and isinstance(value, dict):
                if key == "config":
                    added.config.CopyFrom(struct_of(value))
                else:
                    with contextlib.suppress(json_format.ParseError, TypeError, ValueError):
                        json_format.ParseDict(value, added.body)
            elif key in ("id", "type", "name", "queue") and isinstance(value, str):
                setattr(added, key, value)
            elif key == "breakpoint" and isinstance(value, bool):
                added.breakpoint = value
    for edge in document["edges"]:
        definition.edges.add(source=edge["from"], target=edge["to"])
    return definition


# -- messages from descriptors -----------------------------------------------------------------------


def scalar(field: FD, known: Known) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        edges = [low, high, 0, 1, -1, 1000, 10**6] if low < 0 else [low, high, 0, 1, 1000, 10**6]
        return st.one_of(st.sampled_from(edges), st.integers(low, high))
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return floats.filter(
            lambda value: kind == FD.TYPE_DOUBLE or abs(value) < 3e38 or not math.isfinite(value)
        )
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FD.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.sampled_from([999, -1, 2**31 - 1, -(2**31)]))
    ids = known.ids_for(field.name)
    if field.name.endswith("id") and ids:
        return st.one_of(st.sampled_from(ids), texts)
    if field.name == "workflow_path":
        return st.one_of(st.sampled_from(["hello.json", "loops.json", "nope.json", "../README.md"]), texts)
    return texts


def well_known(name: str) -> st.SearchStrategy[message.Message] | None:
    from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

    if name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=12), json_values, max_size=4).map(struct_of)
    if name == "google.protobuf.Value":
        return json_values.map(lambda value: struct_of(value).fields["value"])
    if name == "google.protobuf.ListValue":
        return st.lists(json_values, max_size=4).map(
            lambda items: struct_of(items).fields["value"].list_value
        )
    if name == "google.protobuf.Timestamp":
        return st.builds(
            timestamp_pb2.Timestamp,
            seconds=st.one_of(st.sampled_from(TIMES), st.integers(-(2**63), 2**63 - 1)),
            nanos=st.sampled_from(NANOS),
        )
    if name == "google.protobuf.Duration":
        return st.builds(
            duration_pb2.Duration,
            seconds=st.one_of(
                st.sampled_from([*TIMES, 315576000000, 315576000001]), st.integers(-(2**40), 2**40)
            ),
            nanos=st.sampled_from(NANOS),
        )
    if name == "google.protobuf.FieldMask":
        return st.builds(field_mask_pb2.FieldMask, paths=st.lists(texts, max_size=3))
    return None


def messages(message_type: descriptor.Descriptor, known: Known, depth: int = 0) -> st.SearchStrategy[Any]:
    special = well_known(message_type.full_name)
    if special is not None:
        return special
    if message_type.full_name == "runctl.v1.WorkflowDefinition" and depth < 4:
        return st.one_of(
            mutated_definitions(), st.deferred(lambda: plain_message(message_type, known, depth))
        )
    return plain_message(message_type, known, depth)


def plain_message(message_type: descriptor.Descriptor, known: Known, depth: int) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(message_type)
    if depth > 5:
        return st.just(cls())
    optional = {f.name: field_values(f, known, depth) for f in message_type.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: filled(cls(), values))


def field_values(field: FD, known: Known, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field, value_field = (
            field.message_type.fields_by_name["key"],
            field.message_type.fields_by_name["value"],
        )
        return st.dictionaries(
            single(key_field, known, depth + 1), single(value_field, known, depth + 1), max_size=3
        )
    if field.is_repeated:
        return st.lists(single(field, known, depth + 1), max_size=3)
    return single(field, known, depth + 1)


def single(field: FD, known: Known, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return messages(field.message_type, known, depth)
    return scalar(field, known)


def filled(target: message.Message, values: dict[str, Any]) -> message.Message:
    for name, value in values.items():
        field_descriptor = target.DESCRIPTOR.fields_by_name[name]
        current = getattr(target, name)
        if isinstance(value, dict):  # a map
            for key, item in value.items():
                if isinstance(item, message.Message):
                    current[key].CopyFrom(item)
                else:
                    current[key] = item
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, message.Message):
                    current.add().CopyFrom(item)
                else:
                    current.append(item)
        elif field_descriptor.message_type is not None:
            current.CopyFrom(value)
        else:
            setattr(target, name, value)
    return target


# -- bytes on the wire -------------------------------------------------------------------------------


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def string_field_numbers(message_type: descriptor.Descriptor) -> list[int]:
    return [f.number for f in message_type.fields if f.type == FD.TYPE_STRING] or [1]


@st.composite
def wire_bytes(draw: st.DrawFn, method: descriptor.MethodDescriptor, known: Known) -> bytes:
    request = draw(messages(method.input_type, known))
    data: bytes = request.SerializeToString()
    damage = draw(st.sampled_from(["none"] * 6 + ["truncate", "flip", "bad_utf8", "junk"]))
    if damage == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if damage == "bad_utf8":
        number = draw(st.sampled_from(string_field_numbers(method.input_type)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf0\x28\x8c"]))
        return data + varint(number << 3 | 2) + varint(len(bad)) + bad
    if damage == "junk":
        return data + draw(st.binary(min_size=1, max_size=16))
    return data


# -- calling and reading -----------------------------------------------------------------------------


def identity(data: bytes) -> bytes:
    return data


def call(
    channel: grpc.Channel, method: descriptor.MethodDescriptor, data: bytes
) -> tuple[grpc.StatusCode, Any]:
    """Send raw request bytes; the status and, when OK, the decoded (first) response."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_factory.GetMessageClass(method.output_type)
    if method.server_streaming:
        stream = channel.unary_stream(path, request_serializer=identity, response_deserializer=identity)
        responses = stream(data, timeout=STREAM_TIMEOUT)
        first = None
        try:
            for index, chunk in enumerate(responses):
                first = first or response_class.FromString(chunk)
                if index >= 3:
                    break
        except grpc.RpcError as error:
            code = error.code()
            # A stream that is still open when the deadline comes is a stream working as designed.
            return (grpc.StatusCode.OK if code == grpc.StatusCode.DEADLINE_EXCEEDED else code), first
        finally:
            responses.cancel()
        return grpc.StatusCode.OK, first
    unary = channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)
    try:
        reply, _state = unary.with_call(data, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        assert error.code() in FORBIDDEN or rpc_status.from_call(error) is not None, (
            f"{path} answered {error.code()} without google.rpc.Status details: {error.details()}"
        )
        return error.code(), None
    return grpc.StatusCode.OK, response_class.FromString(reply)


def ids_in(reply: message.Message | None) -> Known:
    found = Known()
    if reply is None:
        return found

    def walk(value: message.Message) -> None:
        name = value.DESCRIPTOR.full_name
        for field_descriptor, item in value.ListFields():
            if field_descriptor.message_type is not None:
                if field_descriptor.message_type.GetOptions().map_entry:
                    continue
                for child in item if field_descriptor.is_repeated else [item]:
                    walk(child)
            elif isinstance(item, str) and item:
                {
                    ("runctl.v1.Execution", "id"): found.executions,
                    ("runctl.v1.Workflow", "id"): found.workflows,
                    ("runctl.v1.Batch", "batch_id"): found.batches,
                    ("runctl.v1.PausePoint", "context_id"): found.pause_points,
                }.get((name, field_descriptor.name), []).append(item)

    walk(reply)
    return found


@dataclass
class Reader:
    """Every read and stream that shows an object, each of which must answer."""

    channel: grpc.Channel
    http_url: str
    grpc_target: str
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = Client(self.grpc_target)
        self.batches = batch_pb2_grpc.BatchServiceStub(self.channel)
        self.events = event_pb2_grpc.EventServiceStub(self.channel)
        self.points = pause_point_pb2_grpc.PausePointServiceStub(self.channel)

    def first_of(self, stream: Any) -> None:
        try:
            next(iter(stream))
        finally:
            stream.cancel()

    def objects(self, found: Known) -> None:
        """Each read of each object answers: with the object, or NOT_FOUND when a generated request
        deleted it (DeleteWorkflow, ClearBatches); never an error of any other kind."""
        full = execution_pb2.EXECUTION_VIEW_FULL
        executions, workflows = self.client.executions, self.client.workflows
        unary: list[tuple[Any, message.Message]] = []
        streams: list[tuple[Any, message.Message]] = []
        for run in found.executions:
            unary.append(
                (executions.GetExecution, execution_pb2.GetExecutionRequest(execution_id=run, view=full))
            )
            unary.append(
                (executions.GetExecutionHistory, execution_pb2.GetExecutionHistoryRequest(execution_id=run))
            )
            streams.append((executions.WatchExecution, execution_pb2.WatchExecutionRequest(execution_id=run)))
            self.http(f"/api/workflows/execution/{run}")
        for workflow in found.workflows:
            unary.append((workflows.GetWorkflow, workflow_pb2.GetWorkflowRequest(workflow_id=workflow)))
            unary.append(
                (
                    workflows.ListPausedExecutions,
                    workflow_pb2.ListPausedExecutionsRequest(workflow_id=workflow),
                )
            )
        for batch in found.batches:
            unary.append((self.batches.GetBatch, batch_pb2.GetBatchRequest(batch_id=batch)))
            streams.append((self.batches.WatchBatch, batch_pb2.WatchBatchRequest(batch_id=batch)))
        for point in found.pause_points:
            unary.append((self.points.GetPausePoint, pause_point_pb2.GetPausePointRequest(context_id=point)))
        for method, request in [*unary, *streams]:
            try:
                if (method, request) in streams:
                    self.first_of(method(request, timeout=CALL_TIMEOUT))
                else:
                    method(request, timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise

    def http(self, route: str) -> None:
        reply = httpx.get(f"{self.http_url}{route}", timeout=CALL_TIMEOUT)
        assert reply.status_code in (200, 404), (route, reply.status_code, reply.text[:500])

    def workspace(self) -> None:
        """The workspace-wide lists, every page, full views: one poisoned row would fail them all."""
        full = execution_pb2.EXECUTION_VIEW_FULL
        token = ""
        while True:
            page = self.client.executions.ListExecutions(
                execution_pb2.ListExecutionsRequest(view=full, page_size=100, page_token=token),
                timeout=CALL_TIMEOUT,
            )
            token = page.next_page_token
            if not token:
                break
        token = ""
        while True:
            points = self.points.ListPausePoints(
                pause_point_pb2.ListPausePointsRequest(page_size=100, page_token=token), timeout=CALL_TIMEOUT
            )
            token = points.next_page_token
            if not token:
                break
        self.client.workflows.ListWorkflows(
            workflow_pb2.ListWorkflowsRequest(page_size=100), timeout=CALL_TIMEOUT
        )
        self.batches.ListBatches(batch_pb2.ListBatchesRequest(page_size=100), timeout=CALL_TIMEOUT)
        self.events.ListEvents(event_pb2.ListEventsRequest(page_size=1000), timeout=CALL_TIMEOUT)
        self.first_of(self.events.StreamEvents(event_pb2.StreamEventsRequest(), timeout=CALL_TIMEOUT))
        for route in ("/v1/executions", "/v1/workflows", "/api/workflows/executions/batches"):
            reply = httpx.get(f"{self.http_url}{route}", timeout=CALL_TIMEOUT)
            assert reply.status_code == 200, (route, reply.status_code, reply.text[:500])


# -- the property ------------------------------------------------------------------------------------


def seed_objects(client: Client, channel: grpc.Channel) -> Known:
    """A stored workflow, a run waiting at a wait node, one waiting for approval, and a batch."""
    known = Known()
    workflow = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear({"id": "hold", "type": "wait"}))),
        timeout=CALL_TIMEOUT,
    ).workflow
    known.workflows.append(workflow.id)
    known.executions.append(client.start(linear({"id": "hold", "type": "wait"})).id)
    approval = client.start(linear({"id": "ask", "type": "approval", "config": {"title": "Ship?"}})).id
    known.executions.append(approval)
    client.wait(approval, until=(common_pb2.EXECUTION_STATUS_PAUSED,))
    points = pause_point_pb2_grpc.PausePointServiceStub(channel).ListPausePoints(
        pause_point_pb2.ListPausePointsRequest(execution_id=approval), timeout=CALL_TIMEOUT
    )
    known.pause_points.extend(point.context_id for point in points.pause_points)
    batch = batch_pb2_grpc.BatchServiceStub(channel).StartBatch(
        batch_pb2.StartBatchRequest(workflow_ids=batch_pb2.WorkflowIdList(ids=[workflow.id] * 2)),
        timeout=CALL_TIMEOUT,
    )
    known.batches.append(batch.batch.batch_id)
    return known


@pytest.fixture(scope="module")
def reader(server: ServerThread, channel: grpc.Channel) -> Reader:
    return Reader(channel, server.http_url, server.grpc_target)


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_no_request_is_an_internal_error_or_breaks_a_read(
    method: descriptor.MethodDescriptor, channel: grpc.Channel, reader: Reader
) -> None:
    known = seed_objects(reader.client, channel)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(data=wire_bytes(method, known))
    def property(data: bytes) -> None:
        code, reply = call(channel, method, data)
        assert code not in FORBIDDEN, f"{method.full_name} answered {code} to {data[:300]!r}"
        if code == grpc.StatusCode.OK:
            reader.objects(ids_in(reply))

    property()
    reader.objects(known)
    reader.workspace()
