"""The execution object API's Execution object, shaped from a hand-built runctl.v1.Execution."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from runctl.v1 import common_pb2, execution_pb2
from runctl_server.http import timefmt
from runctl_server.http.routes import execution_object as shape

DOCUMENTED_KEYS = {
    "hashid",
    "actions_count",
    "completed_actions_count",
    "created_at",
    "created_at_string",
    "created_at_utc",
    "execution_data",
    "failed_actions_count",
    "id",
    "idle_actions_count",
    "key",
    "log",
    "name",
    "object",
    "running_actions_count",
    "stats",
    "status",
    "stopped_actions_count",
    "template",
}
NODE_STAT_KEYS = {"status", "scheduled_at", "completed_at", "stopped_at", "failed_at"}


def execution(**overrides: Any) -> execution_pb2.Execution:
    document = {
        "id": "exec_0123456789abcdef0123",
        "workflowName": "Workflow 8",
        "status": "EXECUTION_STATUS_RUNNING",
        "createTime": "2025-10-06T03:49:44.250Z",
        "data": {"input": {"who": "Ada"}, "nodes": {"start": {"output": None}}},
        "nodeCounts": {
            "total": 6,
            "idle": 1,
            "scheduled": 1,
            "running": 1,
            "waiting": 1,
            "completed": 1,
            "skipped": 1,
        },
        "nodes": [
            {
                "nodeId": "start",
                "type": "start",
                "status": "NODE_STATUS_COMPLETED",
                "scheduleTime": "2025-10-06T03:49:45Z",
                "endTime": "2025-10-06T03:49:46Z",
            },
            {
                "nodeId": "fetch",
                "type": "http",
                "status": "NODE_STATUS_RUNNING",
                "scheduleTime": "2025-10-06T03:49:46Z",
                "logs": [
                    {
                        "time": "2025-10-06T03:49:47Z",
                        "level": "LOG_LEVEL_INFO",
                        "message": "GET /x",
                        "details": {"status": 200},
                    }
                ],
            },
            {
                "nodeId": "send",
                "type": "wait",
                "status": "NODE_STATUS_WAITING",
                "stack": [
                    {"parentNodeId": "rows", "index": 2, "total": 3},
                    {"parentNodeId": "cells", "index": 0, "total": 1},
                ],
            },
        ],
        "edges": [
            {"fromNodeId": "start", "toNodeId": "fetch", "status": "EDGE_STATUS_TAKEN"},
            {"fromNodeId": "fetch", "toNodeId": "end", "status": "EDGE_STATUS_PENDING"},
            {"fromNodeId": "fetch", "toNodeId": "other", "status": "EDGE_STATUS_NOT_TAKEN"},
        ],
        "definition": {
            "name": "Workflow 8",
            "nodes": [
                {"id": "start", "type": "start", "name": "Start Workflow"},
                {"id": "fetch", "type": "http"},
                {
                    "id": "rows",
                    "type": "for_each",
                    "body": {
                        "nodes": [
                            {
                                "id": "cells",
                                "type": "for_each",
                                "body": {"nodes": [{"id": "send", "type": "wait"}]},
                            }
                        ]
                    },
                },
                {"id": "end", "type": "end"},
            ],
            "edges": [{"from": "start", "to": "fetch"}, {"from": "fetch", "to": "end", "when": "true"}],
            "positions": {"start": {"x": 450}},
            "width": 1200,
            "height": 150,
        },
    }
    document.update(overrides)
    return json_format.ParseDict(document, execution_pb2.Execution())


def test_the_object_has_the_documented_fields_in_their_order() -> None:
    body = shape.execution_object(execution(), timefmt.zone("America/New_York"))
    assert list(body) == sorted(DOCUMENTED_KEYS)
    assert body["object"] == "execution"
    assert body["id"] == "exec_0123456789abcdef0123"
    assert body["name"] == "Workflow 8"
    assert body["key"] == "workflow_8"
    assert body["status"] == "running"
    assert body["created_at"] == "2025-10-05T23:49:44-04:00"
    assert body["created_at_utc"] == "2025-10-06T03:49:44Z"
    assert body["created_at_string"] == "Oct 05, 2025 11:49 pm EDT"
    assert body["execution_data"] == {"input": {"who": "Ada"}, "nodes": {"start": {"output": None}}}


def test_counts_fold_into_the_five_documented_states() -> None:
    body = shape.execution_object(execution(), timefmt.zone(None))
    assert {key: body[key] for key in body if key.endswith("actions_count")} == {
        "actions_count": 6,
        "completed_actions_count": 1,
        "failed_actions_count": 0,
        "idle_actions_count": 2,  # idle + skipped
        "running_actions_count": 3,  # scheduled + running + waiting
        "stopped_actions_count": 0,
    }


def test_stats_by_node_iteration_and_edge() -> None:
    stats = shape.execution_object(execution(), timefmt.zone("America/New_York"))["stats"]
    assert list(stats) == [
        "start",
        "start-fetch",
        "fetch",
        "fetch-end",
        "fetch-other",
        "rows[2].cells[0].send",
    ]
    assert stats["start"] == {
        "status": "completed",
        "scheduled_at": "2025-10-05T23:49:45-04:00",
        "completed_at": "2025-10-05T23:49:46-04:00",
        "stopped_at": None,
        "failed_at": None,
    }
    assert set(stats["rows[2].cells[0].send"]) == NODE_STAT_KEYS
    assert stats["rows[2].cells[0].send"]["status"] == "waiting"
    assert stats["start-fetch"] == {"status": "open"}
    assert stats["fetch-end"] == {"status": "closed"}
    assert stats["fetch-other"] == {"status": "closed"}


def test_template_is_the_layout() -> None:
    template = shape.execution_object(execution(), timefmt.zone(None))["template"]
    assert template == {
        "nodes": [
            {"id": "start", "type": "start", "name": "Start Workflow"},
            {"id": "fetch", "type": "http", "name": "fetch"},
            {"id": "rows", "type": "for_each", "name": "rows"},
            {"id": "end", "type": "end", "name": "end"},
        ],
        "edges": [
            {"from": "start", "to": "fetch", "when": None},
            {"from": "fetch", "to": "end", "when": "true"},
        ],
        "width": 1200,
        "height": 150,
        "positions": {"start": {"x": 450, "y": 0}},
        "action_types": ["http", "for_each", "wait"],
    }


def test_log_holds_node_lines_and_the_run_error() -> None:
    quiet = execution(nodes=[], edges=[])
    assert shape.execution_object(quiet, timefmt.zone(None))["log"] == {}
    failed = execution(
        status="EXECUTION_STATUS_ERROR", error={"message": "boom", "nodeId": "fetch", "code": "X"}
    )
    log = shape.execution_object(failed, timefmt.zone(None))["log"]
    assert log["error"] == {"message": "boom", "node_id": "fetch", "code": "X"}
    assert log["nodes"] == {
        "fetch": [
            {
                "time": "2025-10-06T03:49:47+00:00",
                "level": "info",
                "message": "GET /x",
                "details": {"status": 200},
            }
        ]
    }


def test_key_is_the_workflow_id_when_there_is_one() -> None:
    body = shape.execution_object(execution(workflowId="wf_abc"), timefmt.zone(None))
    assert body["key"] == "wf_abc"


@pytest.mark.parametrize(
    "run_id", ["exec_0123456789abcdef0123", "exec_00000000000000000000", "exec_ffffffffffffffffffff"]
)
def test_hashids_are_short_and_reversible(run_id: str) -> None:
    short = shape.hashid(run_id)
    assert len(short) == 14 and short.isalnum()
    assert shape.execution_id_of(short) == run_id
    assert shape.execution_id_of(run_id) == run_id


def test_other_ids_are_left_alone() -> None:
    assert shape.hashid("legacy-id") == "legacy-id"
    assert shape.execution_id_of("not-a-hashid") == "not-a-hashid"
    assert shape.execution_id_of("zzzzzzzzzzzzzz") == "zzzzzzzzzzzzzz"  # more than 80 bits


def test_slugs() -> None:
    assert shape.slug("Workflow 8") == "workflow_8"
    assert shape.slug("  Order -- approval!  ") == "order_approval"
    assert shape.slug("") == ""


def test_frames_use_the_engine_key_format() -> None:
    node = execution_pb2.NodeState(
        node_id="send",
        status=common_pb2.NODE_STATUS_IDLE,
        stack=[common_pb2.ForEachFrame(parent_node_id="each", index=4, total=5)],
    )
    assert shape.stats(execution_pb2.Execution(nodes=[node]), timefmt.zone(None)) == {
        "each[4].send": {"status": "idle", **dict.fromkeys(sorted(NODE_STAT_KEYS - {"status"}))}
    }
