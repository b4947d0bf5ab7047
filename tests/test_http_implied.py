"""The routes DESIGN.md implies, over real HTTP: create and list workflows, execute one run (stored,
inline, from a file) and a batch (folder, files, ids); invalid documents answer one violation each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runctl.v1 import common_pb2
from runctl_server.engine.definition.model import NODE_ID, NODE_KEYS, TOP_KEYS
from tests.engine_helpers import Client, linear
from tests.support import running_server, settings_for

HELLO = linear({"id": "say", "type": "log", "config": {"message": "hello {{ input.who }}"}}, name="Hello")
RUNNER_ERROR = {"success", "message", "error", "details"}
COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED


@dataclass
class Env:
    http: httpx.Client
    grpc: Client
    root: Path

    def create(self, document: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post("/v1/workflows", json=document, **kwargs)

    def workflow_id(self, document: dict[str, Any] = HELLO) -> str:
        created = self.create(document)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("workflows")
    (root / "nightly").mkdir()
    (root / "nightly" / "a.json").write_text(json.dumps(linear(name="A")))
    (root / "nightly" / "b.json").write_text(json.dumps(linear(name="B")))
    (root / "bad").mkdir()
    (root / "bad" / "broken.json").write_text('{"nodes": [{"id": "x", "type": "nope"}]}')
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with (
        running_server(settings_for(url, workflows_dirs=(root,))) as server,
        httpx.Client(base_url=server.http_url, timeout=10) as http,
        Client(server.grpc_target) as client,
    ):
        yield Env(http, client, root)


def violations(response: httpx.Response, status: int = 400, body: set[str] | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == (body or {"error", "details"})
    return {d["field"]: d["description"] for d in answer["details"] if "field" in d}


# -- POST /v1/workflows, GET /v1/workflows -----------------------------------------------------------


def test_create_answers_201_with_the_id_and_the_secret(env: Env) -> None:
    created = env.create(HELLO, headers={"Authorization": "Bearer token"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "version", "status", "webhookSecret", "createTime", "updateTime"}
    assert body["name"] == "Hello" and body["version"] == 1 and body["status"] == "active"
    assert isinstance(body["webhookSecret"], str) and len(body["webhookSecret"]) >= 16
    assert created.headers["location"] == f"/v1/workflows/{body['id']}"
    # the workflow pause API's GET serves it, without the secret
    fetched = env.http.get(created.headers["location"]).json()
    assert fetched["id"] == body["id"] and "webhookSecret" not in fetched


def test_create_is_idempotent_by_key(env: Env) -> None:
    key = {"Idempotency-Key": "create-hello-1"}
    first = env.create(HELLO, headers=key)
    again = env.create(HELLO, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["webhookSecret"] is None


def test_every_problem_of_a_document_is_a_violation(env: Env) -> None:
    shape = env.create(
        {
            "name": 5,
            "nodes": [{"id": "a", "type": 7}, {"id": "b", "type": "wait", "timeoutSeconds": "5"}],
            "edges": {"from": "a"},
            "colour": "blue",
        }
    )
    assert violations(shape) == {
        "name": "must be a string, not a number",
        "nodes[0].type": "must be a string, not a number",
        "nodes[1].timeoutSeconds": "must be a number, not a string",
        "edges": "must be an array, not an object",
        "colour": "unknown field",
    }
    # the document fits the message; the workflow validation finds the rest
    graph = env.create(
        {
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "x", "type": "delay", "config": {"seconds": -1}},
            ],
            "edges": [{"from": "start", "to": "x"}, {"from": "x", "to": "ghost"}],
        }
    )
    found = violations(graph)
    assert "nodes[1].config.seconds" in found and "edges[1].to" in found
    assert violations(env.http.post("/v1/workflows")) == {"body": "a JSON object is required"}
    assert violations(env.http.post("/v1/workflows", json=[HELLO])) == {"body": "must be a JSON object"}


def test_list_pages_by_token_and_filters_by_status(env: Env) -> None:
    ids = {env.workflow_id(linear(name=f"Listed {n}")) for n in range(3)}
    listed = env.http.get("/v1/workflows").json()
    assert set(listed) == {"workflows", "nextPageToken"} and listed["nextPageToken"] is None
    assert ids <= {w["id"] for w in listed["workflows"]}
    assert all("webhookSecret" not in w and "definition" not in w for w in listed["workflows"])
    seen: list[str] = []
    token = None
    while True:
        page = env.http.get(
            "/v1/workflows", params={"pageSize": 2, **({"pageToken": token} if token else {})}
        )
        assert page.status_code == 200
        seen += [w["id"] for w in page.json()["workflows"]]
        token = page.json()["nextPageToken"]
        if token is None:
            break
    assert seen == [w["id"] for w in listed["workflows"]]
    some = next(iter(ids))
    assert env.http.post(f"/v1/workflows/{some}/pause").status_code == 200
    paused = env.http.get("/v1/workflows", params={"status": "paused"}).json()["workflows"]
    assert [w["id"] for w in paused] == [some] and paused[0]["status"] == "paused"
    assert set(violations(env.http.get("/v1/workflows", params={"status": "asleep"}))) == {"status"}
    assert set(violations(env.http.get("/v1/workflows", params={"pageSize": "-1"}))) == {"pageSize"}
    assert set(violations(env.http.get("/v1/workflows", params={"pageToken": "%%%"}))) == {"pageToken"}


# -- POST /api/workflows/execute ---------------------------------------------------------------------


def started(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"success", "message", "executionId", "workflowId", "status"}
    assert body["success"] is True and body["status"] in ("queued", "running", "paused", "completed")
    return body


def test_execute_a_stored_workflow(env: Env) -> None:
    workflow_id = env.workflow_id()
    body = started(
        env.http.post("/api/workflows/execute", json={"workflowId": workflow_id, "input": {"who": "Ada"}})
    )
    assert body["workflowId"] == workflow_id and body["executionId"].startswith("exec_")
    execution = env.grpc.wait(body["executionId"])
    assert execution.status == COMPLETED and execution.workflow_id == workflow_id
    assert dict(execution.input) == {"who": "Ada"}


def test_execute_an_inline_document_and_a_file(env: Env) -> None:
    inline = started(env.http.post("/api/workflows/execute", json={"workflow": HELLO, "traceLogs": True}))
    assert inline["workflowId"] is None
    assert env.grpc.wait(inline["executionId"]).trace_logs is True
    from_file = started(env.http.post("/api/workflows/execute", json={"workflowPath": "nightly/a.json"}))
    execution = env.grpc.wait(from_file["executionId"])
    assert execution.status == COMPLETED and execution.workflow_path.endswith("nightly/a.json")


def test_execute_is_idempotent_by_request_id(env: Env) -> None:
    first = started(env.http.post("/api/workflows/execute", json={"workflow": HELLO, "requestId": "run-1"}))
    again = started(
        env.http.post(
            "/api/workflows/execute", json={"workflow": HELLO}, headers={"Idempotency-Key": "run-1"}
        )
    )
    assert again["executionId"] == first["executionId"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"workflowId"}),
        ({"workflowId": "wf_a", "workflowPath": "a.json"}, {"workflowId"}),
        ({"workflowId": 5}, {"workflowId"}),
        ({"workflowId": ""}, {"workflowId"}),
        ({"workflowPath": ""}, {"workflowPath"}),
        ({"workflow": {}}, {"workflow"}),
        ({"workflowId": "wf_a", "input": [1]}, {"input"}),
        (
            {"workflowId": "wf_a", "traceLogs": "yes", "workflowVersion": "2"},
            {"traceLogs", "workflowVersion"},
        ),
        (
            {"workflow": {"nodes": [{"id": "a", "type": 1}], "extra": True}},
            {"workflow.nodes[0].type", "workflow.extra"},
        ),
        ({"workflow": "text"}, {"workflow"}),
        (
            {
                "workflow": {
                    "nodes": [{"id": "start", "type": "start"}],
                    "edges": [{"from": "start", "to": "ghost"}],
                }
            },
            {"workflow.edges[0].to"},
        ),
        ({"workflowPath": "../outside.json"}, {"workflowPath"}),
        ({"workflowPath": "bad/broken.json"}, None),
    ],
)
def test_execute_refuses_bad_requests_400(env: Env, body: dict[str, Any], expected: set[str] | None) -> None:
    response = env.http.post("/api/workflows/execute", json=body)
    found = violations(response, body=RUNNER_ERROR)
    assert response.json()["success"] is False and response.json()["message"]
    if expected is not None:
        assert set(found) == expected
    else:
        assert found


def test_execute_unknown_sources_404(env: Env) -> None:
    for body in ({"workflowId": "wf_missing"}, {"workflowPath": "nightly/missing.json"}):
        response = env.http.post("/api/workflows/execute", json=body)
        assert response.status_code == 404, response.text
        assert set(response.json()) == RUNNER_ERROR and response.json()["success"] is False


def test_execute_a_cancelled_workflow_409(env: Env) -> None:
    workflow_id = env.workflow_id()
    assert env.http.post(f"/v1/workflows/{workflow_id}/cancel").status_code == 200
    assert env.http.post("/api/workflows/execute", json={"workflowId": workflow_id}).status_code == 409


# -- POST /api/workflows/execute/batch ---------------------------------------------------------------


def batch(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    required = {"success", "message", "batchId", "status", "sourceType", "totalWorkflows", "concurrency"}
    assert (
        required | {"startTime", "executions"}
        <= set(body)
        <= required | {"startTime", "executions", "folderPath"}
    )
    assert body["success"] is True and isinstance(body["startTime"], int)
    for item in body["executions"]:
        assert {"executionId", "status"} <= set(item)
        assert set(item) <= {
            "executionId",
            "workflowId",
            "workflowFileName",
            "workflowPath",
            "status",
            "currentNodeId",
        }
    return body


def test_batch_from_a_folder(env: Env) -> None:
    body = batch(
        env.http.post("/api/workflows/execute/batch", json={"folderPath": "nightly", "concurrency": 1})
    )
    assert (body["sourceType"], body["folderPath"], body["totalWorkflows"], body["concurrency"]) == (
        "folder",
        "nightly",
        2,
        1,
    )
    assert [item["workflowFileName"] for item in body["executions"]] == ["a.json", "b.json"]
    for item in body["executions"]:
        assert env.grpc.wait(item["executionId"]).status == COMPLETED


def test_batch_from_files_and_from_ids(env: Env) -> None:
    files = batch(
        env.http.post(
            "/api/workflows/execute/batch",
            json={"workflowPaths": ["nightly/b.json", "nightly/a.json"], "input": {"who": "batch"}},
        )
    )
    assert files["sourceType"] == "files" and "folderPath" not in files
    assert [item["workflowPath"] for item in files["executions"]] == ["nightly/b.json", "nightly/a.json"]
    ids = [env.workflow_id(), env.workflow_id()]
    stored = batch(env.http.post("/api/workflows/execute/batch", json={"workflowIds": ids, "concurrency": 2}))
    assert stored["sourceType"] == "workflows" and stored["concurrency"] == 2
    assert [item["workflowId"] for item in stored["executions"]] == ids
    assert all("workflowPath" not in item for item in stored["executions"])


@pytest.mark.parametrize(
    ("body", "expected", "status"),
    [
        ({}, {"folderPath"}, 400),
        ({"folderPath": "nightly", "workflowIds": ["wf_a"]}, {"folderPath"}, 400),
        ({"workflowPaths": "nightly/a.json"}, {"workflowPaths"}, 400),
        ({"workflowPaths": ["nightly/a.json", 3]}, {"workflowPaths[1]"}, 400),
        ({"workflowIds": []}, {"workflowIds"}, 400),
        ({"folderPath": "nightly", "concurrency": "2"}, {"concurrency"}, 400),
        ({"folderPath": "nightly", "concurrency": 1000}, {"concurrency"}, 400),
        ({"folderPath": "nightly", "concurrency": -1}, {"concurrency"}, 400),
        ({"folderPath": "../.."}, {"folderPath"}, 400),
        ({"folderPath": "bad"}, {"folderPath"}, 400),
        ({"workflowPaths": ["nightly/a.json", "../x.json"]}, {"workflowPaths[1]"}, 400),
        ({"folderPath": "missing"}, set(), 404),
        ({"workflowIds": ["wf_missing"]}, set(), 404),
    ],
)
def test_batch_refuses_bad_requests(env: Env, body: dict[str, Any], expected: set[str], status: int) -> None:
    response = env.http.post("/api/workflows/execute/batch", json=body)
    assert set(violations(response, status, RUNNER_ERROR)) == expected


# -- never a 500 -------------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/workflows"),
    ("POST", "/api/workflows/execute"),
    ("POST", "/api/workflows/execute/batch"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "raw", [b"{oops", b"[]", b"null", b"42", b'"s"', b"\xff", b"[" * 50_000, b'{"nodes": [NaN]}', b"{" * 3]
)
def test_malformed_bodies_are_400_never_500(env: Env, method: str, path: str, raw: bytes) -> None:
    response = env.http.request(method, path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text


def test_wrongly_typed_members_are_400_never_500(env: Env) -> None:
    odd: list[Any] = [None, 1, -1, 2**70, 1.5, True, "x", [], {}, [None], {"a": None}]
    members = [
        "workflowId",
        "workflow",
        "workflowPath",
        "input",
        "workflowVersion",
        "folderPath",
        "workflowPaths",
        "workflowIds",
        "concurrency",
        "requestId",
    ]
    for path in ("/api/workflows/execute", "/api/workflows/execute/batch"):
        for member in members:
            for value in odd:
                response = env.http.post(path, json={member: value})
                assert response.status_code in (200, 400, 404), (path, member, value, response.text)
    for value in odd:
        assert env.create({"nodes": value}).status_code == 400
        assert env.create({"nodes": [{"id": "a", "type": "log", "config": value}]}).status_code in (400, 201)


def test_the_openapi_document_lists_the_routes(env: Env) -> None:
    paths = env.http.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/workflows"])
    assert "201" in paths["/v1/workflows"]["post"]["responses"]
    assert "post" in paths["/api/workflows/execute"] and "post" in paths["/api/workflows/execute/batch"]


def test_the_openapi_document_describes_workflow_documents_as_the_validator_does(env: Env) -> None:
    document = env.http.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    create = document["paths"]["/v1/workflows"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/WorkflowDocument"}
    execute = document["paths"]["/api/workflows/execute"]["post"]["requestBody"]["content"]
    assert execute["application/json"]["schema"]["properties"]["workflow"] == create["schema"]
    # The keys and limits are the validator's (engine/definition/model.py), not a copy of them.
    assert set(schemas["WorkflowDocument"]["properties"]) == set(TOP_KEYS)
    assert set(schemas["WorkflowNode"]["properties"]) == set(NODE_KEYS)
    assert schemas["WorkflowNode"]["properties"]["id"]["pattern"] == f"^{NODE_ID.pattern}$"
