"""The execution object API over real HTTP: the Execution object of one run and of a page of runs, field by
field, with timestamps in the requested time zone; 400 and 404 as the error body documents them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from runctl_server.http.routes.execution_object import hashid
from tests.engine_helpers import Client, linear, to_struct
from tests.support import ServerThread, running_server, settings_for

PAUSED = (common_pb2.EXECUTION_STATUS_PAUSED,)
# The Execution object's fields and their JSON types, as the API documents them.
DOCUMENTED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "hashid": str,
    "actions_count": int,
    "completed_actions_count": int,
    "created_at": str,
    "created_at_string": str,
    "created_at_utc": str,
    "execution_data": (dict, type(None)),
    "failed_actions_count": int,
    "id": str,
    "idle_actions_count": int,
    "key": str,
    "log": dict,
    "name": str,
    "object": str,
    "running_actions_count": int,
    "stats": dict,
    "status": str,
    "stopped_actions_count": int,
    "template": dict,
}
NODE_STATS = {"status", "scheduled_at", "completed_at", "stopped_at", "failed_at"}
TEMPLATE = {"nodes", "edges", "width", "height", "positions", "action_types"}
COUNTS = ("completed", "failed", "idle", "running", "stopped")
HUMAN = re.compile(r"^[A-Z][a-z]{2} \d{2}, \d{4} (0[1-9]|1[0-2]):[0-5]\d (am|pm) (\S+)$")
WAITING_WORKFLOW = {
    "name": "Workflow 8",
    "nodes": [
        {"id": "start", "type": "start", "name": "Start Workflow"},
        {"id": "say", "type": "log", "config": {"message": "hello {{ input.who }}"}},
        {"id": "hold", "type": "wait"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "say"}, {"from": "say", "to": "hold"}, {"from": "hold", "to": "end"}],
    "positions": {"start": {"x": 450, "y": 0}, "say": {"x": 450, "y": 100.5}},
    "width": 1200,
    "height": 150,
}


@dataclass
class Runs:
    paused: str
    completed: str
    failed: str
    workflow_id: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with running_server(settings_for(url)) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def runs(server: ServerThread) -> Runs:
    with Client(server.grpc_target) as client:
        created = client.workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=as_definition(WAITING_WORKFLOW)), timeout=10
        ).workflow
        started = client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_id=created.id, input=to_struct({"who": "Ada"})),
            timeout=10,
        ).execution
        client.wait(started.id, until=PAUSED)
        completed = client.run(linear({"id": "say", "type": "log", "config": {"message": "hi"}}, name="Done"))
        failed = client.run(
            linear({"id": "boom", "type": "fail", "config": {"message": "no", "code": "NOPE"}})
        )
        return Runs(started.id, completed.id, failed.id, created.id)


def get(http: httpx.Client, identifier: str, **params: str) -> dict[str, Any]:
    answer = http.get(f"/v1/executions/{identifier}", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def assert_execution_shape(body: dict[str, Any]) -> None:
    """Exactly the documented fields, each with its documented type, nested objects too."""
    assert set(body) == set(DOCUMENTED_FIELDS)
    for name, kind in DOCUMENTED_FIELDS.items():
        assert isinstance(body[name], kind) and not isinstance(body[name], bool), name
    assert body["object"] == "execution"
    assert sum(body[f"{count}_actions_count"] for count in COUNTS) == body["actions_count"]
    for key, entry in body["stats"].items():
        if set(entry) == {"status"}:
            assert "-" in key and entry["status"] in ("open", "closed")
        else:
            assert set(entry) == NODE_STATS, key
            for field in NODE_STATS - {"status"}:
                assert entry[field] is None or isinstance(entry[field], str)
    template = body["template"]
    assert set(template) == TEMPLATE
    assert all(set(node) == {"id", "type", "name"} for node in template["nodes"])
    assert all(set(edge) == {"from", "to", "when"} for edge in template["edges"])
    assert isinstance(template["width"], int) and isinstance(template["height"], int)
    assert all(set(position) == {"x", "y"} for position in template["positions"].values())
    assert isinstance(template["action_types"], list)


def test_a_paused_run_field_by_field(http: httpx.Client, runs: Runs) -> None:
    body = get(http, runs.paused)
    assert_execution_shape(body)
    assert body["id"] == runs.paused and body["hashid"] == hashid(runs.paused)
    assert body["name"] == "Workflow 8" and body["key"] == runs.workflow_id
    assert body["status"] == "paused"
    assert body["execution_data"] == {
        "input": {"who": "Ada"},
        "nodes": {"start": {"output": {"who": "Ada"}}, "say": {"output": {"message": "hello Ada"}}},
    }
    assert (body["actions_count"], body["completed_actions_count"], body["running_actions_count"]) == (
        4,
        2,
        1,
    )
    assert body["idle_actions_count"] == 1
    stats = body["stats"]
    assert [stats[node]["status"] for node in ("start", "say", "hold", "end")] == [
        "completed",
        "completed",
        "waiting",
        "idle",
    ]
    assert stats["start-say"] == {"status": "open"} and stats["say-hold"] == {"status": "open"}
    assert stats["hold-end"] == {"status": "closed"}
    assert stats["say"]["completed_at"] is not None and stats["end"]["completed_at"] is None
    assert body["template"] == {
        "nodes": [
            {"id": "start", "type": "start", "name": "Start Workflow"},
            {"id": "say", "type": "log", "name": "say"},
            {"id": "hold", "type": "wait", "name": "hold"},
            {"id": "end", "type": "end", "name": "end"},
        ],
        "edges": [
            {"from": "start", "to": "say", "when": None},
            {"from": "say", "to": "hold", "when": None},
            {"from": "hold", "to": "end", "when": None},
        ],
        "width": 1200,
        "height": 150,
        "positions": {"start": {"x": 450, "y": 0}, "say": {"x": 450, "y": 100.5}},
        "action_types": ["log", "wait"],
    }
    lines = body["log"]["nodes"]["say"]
    assert lines and lines[0]["message"] == "hello Ada" and lines[0]["level"] == "info"
    assert "error" not in body["log"]


def test_utc_is_the_default_time_zone(http: httpx.Client, runs: Runs) -> None:
    body = get(http, runs.completed)
    created = datetime.fromisoformat(body["created_at"])
    assert body["created_at"].endswith("+00:00") and created.utcoffset() == timedelta(0)
    assert body["created_at_utc"].endswith("Z")
    assert datetime.fromisoformat(body["created_at_utc"].replace("Z", "+00:00")) == created
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)
    match = HUMAN.match(body["created_at_string"])
    assert match is not None and match.group(3) == "UTC"
    assert body["created_at_string"] == created.strftime("%b %d, %Y %I:%M ") + (
        "am UTC" if created.hour < 12 else "pm UTC"
    )


def test_new_york_time_with_est_or_edt(http: httpx.Client, runs: Runs) -> None:
    utc_body = get(http, runs.completed)
    body = get(http, runs.completed, timezone="America/New_York")
    created = datetime.fromisoformat(body["created_at"])
    offset = created.utcoffset()
    assert offset in (timedelta(hours=-4), timedelta(hours=-5))
    assert created == datetime.fromisoformat(utc_body["created_at"])
    assert body["created_at_utc"] == utc_body["created_at_utc"]
    match = HUMAN.match(body["created_at_string"])
    assert match is not None
    assert match.group(3) == ("EDT" if offset == timedelta(hours=-4) else "EST")
    assert body["created_at_string"].startswith(created.strftime("%b %d, %Y %I:%M "))
    # node timestamps follow the zone too
    completed_at = body["stats"]["end"]["completed_at"]
    assert completed_at is not None and completed_at.endswith(body["created_at"][-6:])
    assert body["stats"]["end"]["completed_at"] != utc_body["stats"]["end"]["completed_at"]


def test_a_finished_run_opens_its_edges_and_counts_completions(http: httpx.Client, runs: Runs) -> None:
    body = get(http, runs.completed)
    assert_execution_shape(body)
    assert body["status"] == "completed" and body["key"] == "done"
    assert body["completed_actions_count"] == body["actions_count"] == 3
    assert {key: entry["status"] for key, entry in body["stats"].items() if "-" in key} == {
        "start-say": "open",
        "say-end": "open",
    }
    assert body["template"]["width"] == 0 and body["template"]["positions"] == {}


def test_a_failed_run_logs_its_error(http: httpx.Client, runs: Runs) -> None:
    body = get(http, runs.failed)
    assert_execution_shape(body)
    assert body["status"] == "error" and body["failed_actions_count"] == 1
    assert body["log"]["error"]["node_id"] == "boom" and body["log"]["error"]["code"] == "NOPE"
    assert body["stats"]["boom"]["status"] == "failed" and body["stats"]["boom"]["failed_at"] is not None
    assert body["stats"]["boom-end"] == {"status": "closed"}


def test_a_run_is_found_by_its_hashid(http: httpx.Client, runs: Runs) -> None:
    assert get(http, hashid(runs.paused))["id"] == runs.paused


def test_unknown_runs_and_time_zones(http: httpx.Client, runs: Runs) -> None:
    missing = http.get("/v1/executions/exec_00000000000000000000")
    assert missing.status_code == 404 and set(missing.json()) == {"error", "details"}
    assert http.get("/v1/executions/nope").status_code == 404
    for zone in ("Mars/Olympus", "../../etc/passwd", "x" * 500):
        bad = http.get(f"/v1/executions/{runs.paused}", params={"timezone": zone})
        assert bad.status_code == 400, zone
        assert {"field": "timezone"}.items() <= bad.json()["details"][1].items()
    assert http.get("/v1/executions", params={"timezone": "Nowhere/Land"}).status_code == 400


def test_the_list_answers_execution_objects_newest_first(http: httpx.Client, runs: Runs) -> None:
    answer = http.get("/v1/executions", params={"timezone": "America/New_York"})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"object", "data", "total", "limit", "has_more", "next_page_token"}
    assert body["object"] == "list" and body["limit"] == 20 and body["has_more"] is False
    assert body["next_page_token"] is None
    ids = [item["id"] for item in body["data"]]
    assert ids[:3] == [runs.failed, runs.completed, runs.paused] and body["total"] >= 3
    for item in body["data"]:
        assert_execution_shape(item)
        assert item["created_at"][-6:] in ("-04:00", "-05:00")


def test_the_list_pages_by_token(http: httpx.Client, runs: Runs) -> None:
    seen: list[str] = []
    token = ""
    while True:
        params = {"limit": "1", **({"page_token": token} if token else {})}
        page = http.get("/v1/executions", params=params).json()
        assert len(page["data"]) == 1 and page["limit"] == 1
        seen.append(page["data"][0]["id"])
        assert page["has_more"] == (page["next_page_token"] is not None)
        if not page["has_more"]:
            break
        token = page["next_page_token"]
    assert seen == [item["id"] for item in http.get("/v1/executions").json()["data"]]
    assert len(seen) == len(set(seen)) == page["total"] >= 3
    assert http.get("/v1/executions", params={"limit": "5000"}).json()["limit"] == 100


def test_the_list_filters(http: httpx.Client, runs: Runs) -> None:
    by_workflow = http.get("/v1/executions", params={"workflow_id": runs.workflow_id}).json()
    assert [item["id"] for item in by_workflow["data"]] == [runs.paused] and by_workflow["total"] == 1
    by_status = http.get("/v1/executions", params={"status": "completed,error"}).json()
    assert {item["status"] for item in by_status["data"]} == {"completed", "error"}
    repeated = http.get("/v1/executions", params=[("status", "paused"), ("status", "error")]).json()
    assert {item["id"] for item in repeated["data"]} == {runs.paused, runs.failed}
    none = http.get("/v1/executions", params={"batch_id": "batch_none"}).json()
    assert none["data"] == [] and none["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"status": "sleeping"}, "status"),
        ({"page_token": "garbage!"}, "page_token"),
    ],
)
def test_bad_list_parameters_are_400(http: httpx.Client, params: dict[str, str], field: str) -> None:
    answer = http.get("/v1/executions", params=params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"error", "details"}
    assert field in [detail.get("field") for detail in body["details"]]


def test_the_openapi_document_describes_the_object(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    schema = paths["/v1/executions/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == set(DOCUMENTED_FIELDS) == set(schema["required"])
    assert "timezone" in [p["name"] for p in paths["/v1/executions"]["get"]["parameters"]]
