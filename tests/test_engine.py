"""The scheduler over the real gRPC API, on SQLite and on PostgreSQL: every node type, joins,
loops, retries, timeouts, history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import common_pb2, event_pb2, execution_pb2, pause_point_pb2, workflow_pb2
from tests.engine_helpers import Client, LocalHttp, linear, local_http, node_status, nodes_by_id, output
from tests.postgres import temporary_database
from tests.support import running_server, settings_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
ERROR = common_pb2.EXECUTION_STATUS_ERROR
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A real server per database kind, reached through the generated stubs."""
    workflows = tmp_path_factory.mktemp("workflows")
    (workflows / "hello.json").write_text(
        '{"name": "hello", "nodes": [{"id": "start", "type": "start"},'
        ' {"id": "greet", "type": "transform", "config": {"output": "hello {{ input.who }}"}},'
        ' {"id": "end", "type": "end", "config": {"output": "{{ nodes.greet.output }}"}}],'
        ' "edges": [{"from": "start", "to": "greet"}, {"from": "greet", "to": "end"}]}'
    )
    if request.param == "sqlite":
        with (
            running_server(
                settings_for(
                    f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}", workflows_dirs=(workflows,)
                )
            ) as handle,
            Client(handle.grpc_target) as client,
        ):
            yield client
    else:
        with (
            temporary_database() as url,
            running_server(settings_for(url, workflows_dirs=(workflows,))) as handle,
            Client(handle.grpc_target) as client,
        ):
            yield client


@pytest.fixture(scope="module")
def http() -> Iterator[LocalHttp]:
    with local_http() as server:
        yield server


def test_linear_run_completes_with_gapless_ordered_history(client: Client) -> None:
    doc = linear(
        {
            "id": "double",
            "type": "transform",
            "config": {"output": {"n": "{{ input.n }}", "twice": "x{{ input.n }}"}},
        },
        {"id": "note", "type": "log", "config": {"message": "n is {{ input.n }}"}},
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.double.output }}"}
    execution = client.run(doc, {"n": 21})
    assert execution.status == COMPLETED
    assert node_status(execution) == {
        "start": "completed",
        "double": "completed",
        "note": "completed",
        "end": "completed",
    }
    assert output(execution.output) == {"n": 21, "twice": "x21"}
    assert output(nodes_by_id(execution)["note"].logs[0])["message"] == "n is 21"
    events = list(client.history(execution.id))
    sequences = [event.sequence for event in events]
    assert sequences == sorted(sequences)
    types = [event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_") for event in events]
    assert types[0] == "EXECUTION_STARTED" and types[-1] == "EXECUTION_COMPLETED"
    node_events = [(e.node_id, t) for e, t in zip(events, types, strict=True) if t.startswith("NODE_")]
    # A log node's line is an event too, so it is in history and live streams.
    assert node_events == [
        (node, kind)
        for node in ("start", "double", "note", "end")
        for kind in (
            ("NODE_STARTED", "NODE_LOG", "NODE_COMPLETED")
            if node == "note"
            else ("NODE_STARTED", "NODE_COMPLETED")
        )
    ]
    assert execution.last_sequence == sequences[-1]


def test_condition_skips_the_branch_not_taken_and_the_join_completes(client: Client) -> None:
    doc = {
        "name": "branch",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "condition", "config": {"expression": "input.n > `5`"}},
            {"id": "big", "type": "transform", "config": {"output": "big"}},
            {"id": "small", "type": "transform", "config": {"output": "small"}},
            {"id": "after-small", "type": "log", "config": {"message": "only when small"}},
            {
                "id": "join",
                "type": "transform",
                "config": {"output": "{{ [nodes.big.output, nodes.small.output] }}"},
            },
            {"id": "end", "type": "end", "config": {"output": "{{ nodes.join.output }}"}},
        ],
        "edges": [
            {"from": "start", "to": "check"},
            {"from": "check", "to": "big", "when": "true"},
            {"from": "check", "to": "small", "when": "false"},
            {"from": "small", "to": "after-small"},
            {"from": "big", "to": "join"},
            {"from": "after-small", "to": "join"},
            {"from": "join", "to": "end"},
        ],
    }
    execution = client.run(doc, {"n": 10})
    assert execution.status == COMPLETED
    statuses = node_status(execution)
    assert statuses["big"] == "completed"
    assert statuses["small"] == "skipped" and statuses["after-small"] == "skipped"
    assert statuses["join"] == "completed"
    assert output(execution.output) == ["big", None]
    edges = {(e.from_node_id, e.to_node_id): e.status for e in execution.edges}
    assert edges[("check", "big")] == execution_pb2.EDGE_STATUS_TAKEN
    assert edges[("check", "small")] == execution_pb2.EDGE_STATUS_NOT_TAKEN
    other = client.run(doc, {"n": 1})
    assert node_status(other)["big"] == "skipped" and node_status(other)["after-small"] == "completed"


def test_switch_takes_the_matching_case_or_default(client: Client) -> None:
    doc = {
        "name": "switch",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "route", "type": "switch", "config": {"expression": "input.kind", "cases": ["a", "b"]}},
            {"id": "a", "type": "transform", "config": {"output": "A"}},
            {"id": "b", "type": "transform", "config": {"output": "B"}},
            {"id": "other", "type": "transform", "config": {"output": "other"}},
        ],
        "edges": [
            {"from": "start", "to": "route"},
            {"from": "route", "to": "a", "when": "a"},
            {"from": "route", "to": "b", "when": "b"},
            {"from": "route", "to": "other", "when": "default"},
        ],
    }
    assert node_status(client.run(doc, {"kind": "b"})) == {
        "start": "completed",
        "route": "completed",
        "a": "skipped",
        "b": "completed",
        "other": "skipped",
    }
    assert node_status(client.run(doc, {"kind": "zzz"}))["other"] == "completed"


def test_independent_branches_run_concurrently(client: Client) -> None:
    doc = {
        "name": "parallel",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "left", "type": "delay", "config": {"seconds": 0.6}},
            {"id": "right", "type": "delay", "config": {"seconds": 0.6}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "left"},
            {"from": "start", "to": "right"},
            {"from": "left", "to": "end"},
            {"from": "right", "to": "end"},
        ],
    }
    execution = client.run(doc)
    assert execution.status == COMPLETED
    left, right = nodes_by_id(execution)["left"], nodes_by_id(execution)["right"]
    # Each delay started before the other finished, and each really waited its 0.6 s.
    assert left.start_time.ToDatetime() < right.end_time.ToDatetime()
    assert right.start_time.ToDatetime() < left.end_time.ToDatetime()
    for node in (left, right):
        assert (node.end_time.ToNanoseconds() - node.start_time.ToNanoseconds()) / 1e9 >= 0.6
    end = nodes_by_id(execution)["end"]
    assert end.start_time.ToNanoseconds() >= max(
        left.end_time.ToNanoseconds(), right.end_time.ToNanoseconds()
    )


def test_nested_for_each_carries_the_stack(client: Client) -> None:
    doc = linear(
        {
            "id": "rows",
            "type": "for_each",
            "config": {"items": "input.rows", "concurrency": 2},
            "body": {
                "nodes": [
                    {
                        "id": "cells",
                        "type": "for_each",
                        "config": {"items": "item"},
                        "body": {
                            "nodes": [
                                {
                                    "id": "cell",
                                    "type": "transform",
                                    "config": {
                                        "output": {
                                            "value": "{{ item }}",
                                            "stack": "{{ stack }}",
                                            "index": "{{ index }}",
                                        }
                                    },
                                }
                            ],
                            "edges": [],
                        },
                    }
                ],
                "edges": [],
            },
        },
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.rows.output }}"}
    execution = client.run(doc, {"rows": [["a", "b"], ["c"], []]})
    assert execution.status == COMPLETED
    result = output(execution.output)
    assert [[cell["value"] for cell in row] for row in result] == [["a", "b"], ["c"], []]
    b = result[0][1]
    assert b["index"] == 1
    assert b["stack"] == [
        {"index": 0, "parentNodeId": "rows", "total": 3},
        {"index": 1, "parentNodeId": "cells", "total": 2},
    ]
    cells = [n for n in execution.nodes if n.node_id == "cell"]
    assert len(cells) == 3
    stacks = sorted([(f.parent_node_id, f.index) for f in n.stack] for n in cells)
    assert stacks == [[("rows", 0), ("cells", 0)], [("rows", 0), ("cells", 1)], [("rows", 1), ("cells", 0)]]


def test_http_node_sends_templated_request_with_idempotency_key(client: Client, http: LocalHttp) -> None:
    doc = linear(
        {
            "id": "call",
            "type": "http",
            "config": {
                "method": "POST",
                "url": http.url + "/orders/{{ input.id }}",
                "headers": {"X-Order": "{{ input.id }}"},
                "body": {"quantity": "{{ input.qty }}"},
            },
        }
    )
    order = f"o-{uuid.uuid4().hex[:8]}"
    execution = client.run(doc, {"id": order, "qty": 3})
    assert execution.status == COMPLETED
    call = output(nodes_by_id(execution)["call"].output)
    assert call["status"] == 200 and call["body"]["echo"] == {"quantity": 3}
    (request,) = [r for r in http.requests if r.path == f"/orders/{order}"]
    assert request.method == "POST" and request.headers["X-Order"] == order
    assert request.headers["Idempotency-Key"] == f"{execution.id}/call"


def test_retries_back_off_then_succeed(client: Client, http: LocalHttp) -> None:
    key = uuid.uuid4().hex
    http.failures[key] = 2
    doc = linear(
        {
            "id": "flaky",
            "type": "http",
            "config": {"url": http.url + f"/flaky/{key}"},
            "retry": {"maxAttempts": 3, "backoffSeconds": 0.1},
        }
    )
    execution = client.run(doc)
    assert execution.status == COMPLETED
    assert nodes_by_id(execution)["flaky"].attempts == 3
    types = [event_pb2.EventType.Name(e.type) for e in client.history(execution.id) if e.node_id == "flaky"]
    assert types.count("EVENT_TYPE_NODE_RETRYING") == 2
    keys = {r.headers["Idempotency-Key"] for r in http.requests if r.path == f"/flaky/{key}"}
    assert keys == {f"{execution.id}/flaky"}


def test_retries_exhausted_fail_the_run(client: Client, http: LocalHttp) -> None:
    http.failures["r2"] = 5
    doc = linear(
        {
            "id": "flaky",
            "type": "http",
            "config": {"url": http.url + "/flaky/r2"},
            "retry": {"maxAttempts": 2},
        }
    )
    execution = client.run(doc)
    assert execution.status == ERROR
    assert execution.error.node_id == "flaky" and "503" in execution.error.message
    node = nodes_by_id(execution)["flaky"]
    assert node.status == common_pb2.NODE_STATUS_FAILED and node.attempts == 2
    assert node_status(execution)["end"] == "idle"


def test_client_errors_are_not_retried(client: Client, http: LocalHttp) -> None:
    doc = linear(
        {"id": "gone", "type": "http", "config": {"url": http.url + "/missing"}, "retry": {"maxAttempts": 5}}
    )
    execution = client.run(doc)
    assert execution.status == ERROR
    assert nodes_by_id(execution)["gone"].attempts == 1


def test_node_timeout_fails_a_slow_node(client: Client, http: LocalHttp) -> None:
    doc = linear({"id": "slow", "type": "http", "config": {"url": http.url + "/slow"}, "timeoutSeconds": 0.3})
    execution = client.run(doc)
    assert execution.status == ERROR
    assert nodes_by_id(execution)["slow"].error.code == "TIMEOUT"


def test_fail_node_ends_the_run_with_its_message(client: Client) -> None:
    execution = client.run(
        linear(
            {"id": "boom", "type": "fail", "config": {"message": "bad input {{ input.x }}", "code": "BAD"}}
        ),
        {"x": 1},
    )
    assert execution.status == ERROR
    assert execution.error.message == "bad input 1" and execution.error.code == "BAD"


def test_wait_node_parks_the_run_at_a_pause_point(client: Client) -> None:
    execution_id = client.start(linear({"id": "hold", "type": "wait"})).id
    execution = client.wait(execution_id, until=(PAUSED,))
    assert execution.paused_node_id == "hold"
    assert execution.pause_reason == common_pb2.PAUSE_REASON_WAIT
    assert nodes_by_id(execution)["hold"].status == common_pb2.NODE_STATUS_WAITING
    (pause,) = execution.pause_points
    assert pause.node_id == "hold" and pause.resume_status == pause_point_pb2.RESUME_STATUS_PAUSED
    assert pause.context_id == nodes_by_id(execution)["hold"].context_id


def test_approval_pause_point_carries_display_and_form(client: Client) -> None:
    fields = [
        {"name": "approved", "type": "boolean", "required": True},
        {"name": "tier", "type": "select", "options": ["gold", "silver"], "default": "silver"},
    ]
    doc = linear(
        {
            "id": "approve",
            "type": "approval",
            "config": {"title": "Approve {{ input.who }}", "message": "Please review", "formFields": fields},
        }
    )
    execution = client.wait(client.start(doc, input={"who": "Ada"}).id, until=(PAUSED,))
    assert execution.pause_reason == common_pb2.PAUSE_REASON_APPROVAL
    (pause,) = execution.pause_points
    assert pause.response.display_data.title == "Approve Ada"
    assert pause.response.display_data.message == "Please review"
    assert [f.name for f in pause.response.form_fields] == ["approved", "tier"]
    assert pause.response.form_fields[1].type == pause_point_pb2.FORM_FIELD_TYPE_SELECT
    assert list(pause.response.form_fields[1].options) == ["gold", "silver"]
    assert f"/api/resume/-/{execution.id}/{pause.context_id}?token=" in pause.resume_links.api_url


@pytest.mark.parametrize(("on_timeout", "status"), [("continue", COMPLETED), ("fail", ERROR)])
def test_wait_timeout_expires_the_pause_point(client: Client, on_timeout: str, status: int) -> None:
    doc = linear({"id": "hold", "type": "wait", "config": {"timeoutSeconds": 0.3, "onTimeout": on_timeout}})
    execution = client.run(doc)
    assert execution.status == status
    types = [event_pb2.EventType.Name(e.type) for e in client.history(execution.id)]
    assert "EVENT_TYPE_PAUSE_POINT_EXPIRED" in types


def test_wait_timeout_can_take_the_timeout_branch(client: Client) -> None:
    doc = {
        "name": "expiry branch",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "hold", "type": "wait", "config": {"timeoutSeconds": 0.2, "onTimeout": "branch"}},
            {"id": "normal", "type": "log", "config": {"message": "resumed"}},
            {"id": "late", "type": "log", "config": {"message": "expired"}},
        ],
        "edges": [
            {"from": "start", "to": "hold"},
            {"from": "hold", "to": "normal"},
            {"from": "hold", "to": "late", "when": "timeout"},
        ],
    }
    execution = client.run(doc)
    assert node_status(execution)["late"] == "completed" and node_status(execution)["normal"] == "skipped"


def test_breakpoints_pause_unless_disabled(client: Client) -> None:
    doc = linear({"id": "step", "type": "transform", "config": {"output": 1}, "breakpoint": True})
    paused = client.wait(client.start(doc).id, until=(PAUSED,))
    assert paused.pause_reason == common_pb2.PAUSE_REASON_BREAKPOINT and paused.paused_node_id == "step"
    assert node_status(paused)["step"] == "waiting"
    through = client.run(doc, disable_breakpoints=True)
    assert through.status == COMPLETED


def test_delay_until_a_time_in_the_past_fires_at_once(client: Client) -> None:
    execution = client.run(
        linear({"id": "late", "type": "delay", "config": {"until": "2000-01-01T00:00:00Z"}})
    )
    assert execution.status == COMPLETED


def test_subworkflow_runs_a_child_and_takes_its_output(client: Client) -> None:
    child = client.workflows.CreateWorkflow(
        __import__("runctl.v1.workflow_pb2", fromlist=["x"]).CreateWorkflowRequest(
            definition=as_definition(
                linear(
                    {"id": "calc", "type": "transform", "config": {"output": "{{ input.value }}"}},
                    name="child",
                )
                | {}
            )
        ),
        timeout=10,
    ).workflow
    parent = linear(
        {
            "id": "sub",
            "type": "subworkflow",
            "config": {"workflowId": child.id, "input": {"value": "{{ input.v }}"}},
        }
    )
    execution = client.run(parent, {"v": 5})
    assert execution.status == COMPLETED
    sub = output(nodes_by_id(execution)["sub"].output)
    assert sub["executionId"].startswith("exec_")
    assert client.get(sub["executionId"]).status == COMPLETED


def test_start_by_file_path_under_the_roots(client: Client, tmp_path: Path) -> None:
    execution = client.wait(
        client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_path="hello.json", input=_struct({"who": "file"})),
            timeout=10,
        ).execution.id
    )
    assert execution.status == COMPLETED and output(execution.output) == "hello file"
    assert execution.workflow_path.endswith("hello.json")
    outside = tmp_path / "evil.json"
    outside.write_text("{}")
    with pytest.raises(grpc.RpcError) as error:
        client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_path=str(outside)), timeout=10
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as error:
        client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_path="../" + outside.name), timeout=10
        )
    assert error.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


def bad_request(error: grpc.RpcError) -> Any:
    """The google.rpc.BadRequest detail of a failed call."""
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(error)
    assert status is not None, error
    for detail in status.details:
        found = error_details_pb2.BadRequest()
        if detail.Unpack(found):
            return found
    raise AssertionError(f"no BadRequest in {status}")


def test_subworkflow_paths_outside_the_roots_are_refused_before_anything_runs(
    client: Client, tmp_path: Path
) -> None:
    """An inline run, a stored workflow and its update all check a sub-workflow's file path when they
    are sent, with the node's field path, not when the node runs; a path inside the roots that does not
    exist yet is accepted (the file may come later)."""
    outside = tmp_path / "evil.json"
    outside.write_text("{}")

    def calling(path: str, looped: bool = False) -> dict[str, Any]:
        child = {"id": "child", "type": "subworkflow", "config": {"workflowPath": path}}
        if looped:
            child = {"id": "each", "type": "for_each", "config": {"items": "input.items"},
                     "body": {"nodes": [child], "edges": []}}  # fmt: skip
        return linear(child)

    for document, field in (
        (calling(str(outside)), "nodes[1].config.workflowPath"),
        (calling("../" + outside.name), "nodes[1].config.workflowPath"),
        (calling("x" * 300 + ".json"), "nodes[1].config.workflowPath"),
        (calling(str(outside), looped=True), "nodes[1].body.nodes[0].config.workflowPath"),
    ):
        for stored in (False, True):
            with pytest.raises(grpc.RpcError) as error:
                if stored:
                    client.workflows.CreateWorkflow(
                        workflow_pb2.CreateWorkflowRequest(definition=as_definition(document)), timeout=10
                    )
                else:
                    client.start(document)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [v.field for v in bad_request(error.value).field_violations] == [field]
    later = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(calling("not-yet.json"))), timeout=10
    ).workflow
    with pytest.raises(grpc.RpcError) as error:
        client.workflows.UpdateWorkflow(
            workflow_pb2.UpdateWorkflowRequest(
                workflow_id=later.id, definition=as_definition(calling(str(outside)))
            ),
            timeout=10,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_request_id_makes_start_idempotent(client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    doc = linear({"id": "hold", "type": "wait"})
    same, other = uuid.uuid4().hex, uuid.uuid4().hex
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: client.start(doc, request_id=same).id, range(8)))
    assert len(ids) == 1
    assert client.start(doc, request_id=same).id in ids
    assert client.start(doc, request_id=other).id not in ids


def test_validation_lists_every_violation(client: Client) -> None:
    bad = {
        "name": "bad",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "start", "type": "transform"},
            {"id": "x", "type": "navigate"},
            {"id": "c", "type": "condition", "config": {"expression": "input.[["}},
        ],
        "edges": [{"from": "start", "to": "ghost"}],
    }
    with pytest.raises(grpc.RpcError) as error:
        client.start(bad)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error.value)
    assert status is not None
    from google.rpc import error_details_pb2

    violations: list[Any] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
    fields = {v.field for v in violations}
    assert {"nodes[1].id", "nodes[2].type", "nodes[3].config.expression", "edges[0].to"} <= fields
    assert len(violations) >= 4


def _struct(data: dict[str, Any]) -> Any:
    from tests.engine_helpers import to_struct

    return to_struct(data)


def test_a_failing_branch_stops_the_waiting_ones(client: Client) -> None:
    doc = {
        "name": "fail beside a wait",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "hold", "type": "wait"},
            {"id": "later", "type": "delay", "config": {"seconds": 0.3}},
            {"id": "boom", "type": "fail", "config": {"message": "stop everything"}},
        ],
        "edges": [
            {"from": "start", "to": "hold"},
            {"from": "start", "to": "later"},
            {"from": "later", "to": "boom"},
        ],
    }
    execution = client.run(doc)
    assert execution.status == ERROR
    assert node_status(execution)["hold"] == "stopped"
    assert not execution.pause_points
    types = [event_pb2.EventType.Name(e.type) for e in client.history(execution.id)]
    assert "EVENT_TYPE_PAUSE_POINT_CANCELLED" in types
    assert types[-1] == "EVENT_TYPE_EXECUTION_FAILED"


def test_start_answers_the_committed_run(client: Client) -> None:
    request = execution_pb2.StartExecutionRequest(
        definition=as_definition(linear({"id": "hold", "type": "wait"}, name="Answer")),
        input=_struct({"k": 1}),
        trace_logs=True,
    )
    started = client.executions.StartExecution(request, timeout=10).execution
    assert started.id.startswith("exec_") and started.workflow_name == "Answer"
    assert started.status == common_pb2.EXECUTION_STATUS_RUNNING and started.trace_logs
    assert output(started.input) == {"k": 1}
    history = list(client.history(started.id))
    assert history[0].sequence == started.last_sequence  # the EXECUTION_STARTED event it committed
    assert history[0].type == event_pb2.EVENT_TYPE_EXECUTION_STARTED
