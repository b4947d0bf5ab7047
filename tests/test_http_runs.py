"""The node resume API over real HTTP: resume a waiting node with the workflow's webhook secret, at top level,
in nested for-each iterations (stack) and with the legacy flat fields; 400, 401 and 404 as documented."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.protobuf import json_format

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from tests.engine_helpers import Client, linear, nodes_by_id, output, to_struct
from tests.support import running_server, settings_for

BEARER = {"Authorization": "Bearer YOUR_API_TOKEN"}
COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED


@dataclass
class Env:
    http: httpx.Client
    grpc: Client

    def run(self, document: dict[str, Any], input: dict[str, Any] | None = None) -> tuple[str, str]:
        """A run of a new stored workflow: its id and the workflow's webhook secret."""
        created = self.grpc.workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=as_definition(document)), timeout=10
        ).workflow
        started = self.grpc.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_id=created.id, input=to_struct(input or {})),
            timeout=10,
        ).execution
        return started.id, created.webhook_secret

    def waiting(self, execution_id: str, node_id: str, indices: Sequence[int] = ()) -> None:
        """Poll until the node, in that loop iteration, waits."""
        deadline = time.monotonic() + 20
        while True:
            for node in self.grpc.get(execution_id).nodes:
                found = node.node_id == node_id and [f.index for f in node.stack] == list(indices)
                if found and node.status == common_pb2.NODE_STATUS_WAITING and node.context_id:
                    return
            assert time.monotonic() < deadline, f"{node_id} {indices} never waited"
            time.sleep(0.02)

    def resume(
        self,
        execution_id: str,
        node_id: str,
        secret: str | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        params = {} if secret is None else {"secret": secret}
        return self.http.post(
            f"/v1/runs/{execution_id}/nodes/{node_id}/resume",
            params=params,
            headers={**BEARER, **(headers or {})},
            json=body,
            **kwargs,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with (
        running_server(settings_for(url)) as server,
        httpx.Client(base_url=server.http_url, timeout=10) as http,
        Client(server.grpc_target) as client,
    ):
        yield Env(http, client)


def answer(response: httpx.Response) -> tuple[str, str]:
    """A 200 answer in the documented shape: exactly action and reason, both strings."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"action", "reason"}
    assert isinstance(body["action"], str) and isinstance(body["reason"], str)
    return body["action"], body["reason"]


def fields(response: httpx.Response, status: int = 400) -> set[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "details"}
    return {detail["field"] for detail in body["details"] if "field" in detail}


def nested_loops() -> dict[str, Any]:
    inner = {
        "id": "for_each_cell",
        "type": "for_each",
        "config": {"items": "item"},
        "body": {"nodes": [{"id": "hold", "type": "wait"}], "edges": []},
    }
    doc = linear(
        {
            "id": "for_each_row",
            "type": "for_each",
            "config": {"items": "input.rows"},
            "body": {"nodes": [inner], "edges": []},
        }
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.for_each_row.output }}"}
    return doc


def single_loop() -> dict[str, Any]:
    doc = linear(
        {
            "id": "for_each_send",
            "type": "for_each",
            "config": {"items": "input.to"},
            "body": {"nodes": [{"id": "hold", "type": "wait"}], "edges": []},
        }
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.for_each_send.output }}"}
    return doc


def test_the_documented_example_request_resumes_then_skips(env: Env) -> None:
    execution_id, secret = env.run(linear({"id": "hold", "type": "wait"}))
    env.waiting(execution_id, "hold")
    # the documented curl: -d '{}' with a bearer token
    first = env.http.post(
        f"/v1/runs/{execution_id}/nodes/hold/resume?secret={secret}",
        headers={**BEARER, "Content-Type": "application/json"},
        content=b"{}",
    )
    assert answer(first) == ("resumed", "")
    assert answer(env.resume(execution_id, "hold", secret, {"data": {"late": True}})) == (
        "skipped",
        "already resumed",
    )
    assert env.grpc.wait(execution_id).status == COMPLETED


def test_data_becomes_the_nodes_output(env: Env) -> None:
    execution_id, secret = env.run(linear({"id": "hold", "type": "wait"}))
    env.waiting(execution_id, "hold")
    data = {"approved": True, "note": "ok", "items": [1, 2], "nested": {"n": None}}
    assert answer(env.resume(execution_id, "hold", secret, {"data": data})) == ("resumed", "")
    execution = env.grpc.wait(execution_id)
    node_output = json_format.MessageToDict(nodes_by_id(execution)["hold"].output)
    assert node_output == {"approved": True, "note": "ok", "items": [1.0, 2.0], "nested": {"n": None}}


def test_nested_for_each_iterations_by_stack(env: Env) -> None:
    execution_id, secret = env.run(nested_loops(), {"rows": [["a", "b"], ["c"]]})
    env.waiting(execution_id, "hold", (0, 0))
    ahead = {
        "forEachContext": {
            "stack": [
                {"index": 1, "parentNodeId": "for_each_row", "total": 2},
                {"index": 0, "parentNodeId": "for_each_cell", "total": 1},
            ]
        }
    }
    action, reason = answer(env.resume(execution_id, "hold", secret, ahead))
    assert action == "skipped" and "not been reached" in reason
    for outer, inner, total in ((0, 0, 2), (0, 1, 2), (1, 0, 1)):
        env.waiting(execution_id, "hold", (outer, inner))
        body = {
            "data": {"cell": f"{outer}.{inner}"},
            "forEachContext": {
                "stack": [
                    {"index": outer, "parentNodeId": "for_each_row", "total": 2},
                    {"index": inner, "parentNodeId": "for_each_cell", "total": total},
                ],
            },
        }
        assert answer(env.resume(execution_id, "hold", secret, body)) == ("resumed", "")
        assert answer(env.resume(execution_id, "hold", secret, body)) == ("skipped", "already resumed")
    execution = env.grpc.wait(execution_id)
    assert execution.status == COMPLETED
    assert output(execution.output) == [
        [{"cell": "0.0"}, {"cell": "0.1"}],
        [{"cell": "1.0"}],
    ]


def test_legacy_flat_fields_and_a_stack_of_one(env: Env) -> None:
    execution_id, secret = env.run(single_loop(), {"to": ["ada", "bob"]})
    env.waiting(execution_id, "hold", (0,))
    legacy = {"data": {"i": 0}, "forEachContext": {"index": 0, "parentNodeId": "for_each_send", "total": 2}}
    assert answer(env.resume(execution_id, "hold", secret, legacy)) == ("resumed", "")
    env.waiting(execution_id, "hold", (1,))
    modern = {
        "data": {"i": 1},
        "forEachContext": {"stack": [{"index": 1, "parentNodeId": "for_each_send", "total": 2}]},
    }
    assert answer(env.resume(execution_id, "hold", secret, modern)) == ("resumed", "")
    assert output(env.grpc.wait(execution_id).output) == [{"i": 0}, {"i": 1}]


def test_an_idempotency_key_makes_a_retry_resumed_again(env: Env) -> None:
    execution_id, secret = env.run(linear({"id": "hold", "type": "wait"}))
    env.waiting(execution_id, "hold")
    once = {"Idempotency-Key": "resume-once"}
    assert answer(env.resume(execution_id, "hold", secret, {}, once)) == ("resumed", "")
    assert answer(env.resume(execution_id, "hold", secret, {}, once)) == ("resumed", "")
    assert answer(env.resume(execution_id, "hold", secret, {}, {"Idempotency-Key": "other"}))[0] == "skipped"


def test_a_node_that_does_not_wait_is_skipped(env: Env) -> None:
    execution_id, secret = env.run(linear({"id": "hold", "type": "wait"}))
    env.waiting(execution_id, "hold")
    action, reason = answer(env.resume(execution_id, "start", secret))
    assert action == "skipped" and reason


def test_secrets_401(env: Env) -> None:
    execution_id, secret = env.run(linear({"id": "hold", "type": "wait"}))
    env.waiting(execution_id, "hold")
    for given in (None, "", "wrong", secret[:-1]):
        refused = env.resume(execution_id, "hold", given, {"data": {}})
        assert refused.status_code == 401, given
        assert set(refused.json()) == {"error", "details"}
        assert refused.json()["details"][0]["reason"] in ("SECRET_REQUIRED", "BAD_SECRET")
    # a run of an inline document has no workflow, hence no secret that could match
    inline = env.grpc.start(linear({"id": "hold", "type": "wait"})).id
    env.waiting(inline, "hold")
    assert env.resume(inline, "hold", "anything").status_code == 401
    assert answer(env.resume(execution_id, "hold", secret)) == ("resumed", "")


def test_unknown_runs_and_nodes_404(env: Env) -> None:
    execution_id, secret = env.run(linear({"id": "hold", "type": "wait"}))
    missing_run = env.resume("exec_00000000000000000000", "hold", secret)
    assert missing_run.status_code == 404 and set(missing_run.json()) == {"error", "details"}
    assert env.resume("exec_00000000000000000000", "hold", None).status_code == 404
    missing_node = env.resume(execution_id, "nowhere", secret)
    assert missing_node.status_code == 404 and missing_node.json()["details"][0]["reason"] == "NODE_NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"data": [1, 2]}, {"data"}),
        ({"data": "text"}, {"data"}),
        ({"forEachContext": "outer"}, {"forEachContext"}),
        ({"forEachContext": {"stack": {"index": 0}}}, {"forEachContext.stack"}),
        ({"forEachContext": {"stack": [5]}}, {"forEachContext.stack[0]"}),
        (
            {"forEachContext": {"stack": [{"index": "0", "parentNodeId": 7, "total": -1}]}},
            {
                "forEachContext.stack[0].index",
                "forEachContext.stack[0].parentNodeId",
                "forEachContext.stack[0].total",
            },
        ),
        ({"forEachContext": {"index": 1.5, "parentNodeId": "for_each_send"}}, {"forEachContext.index"}),
        ({"forEachContext": {"index": True}}, {"forEachContext.index"}),
        ({"forEachContext": {"index": 2**40}}, {"forEachContext.index"}),
    ],
)
def test_malformed_payloads_400(env: Env, body: dict[str, Any], expected: set[str]) -> None:
    assert fields(env.resume("exec_anything", "hold", "s", body)) == expected


def test_for_each_contexts_that_do_not_fit_the_node_400(env: Env) -> None:
    execution_id, secret = env.run(nested_loops(), {"rows": [["a"]]})
    env.waiting(execution_id, "hold", (0, 0))
    assert fields(env.resume(execution_id, "hold", secret, {})) == {"forEachContext.stack"}
    swapped = {
        "forEachContext": {
            "stack": [
                {"index": 0, "parentNodeId": "for_each_cell", "total": 1},
                {"index": 0, "parentNodeId": "for_each_row", "total": 1},
            ]
        }
    }
    assert fields(env.resume(execution_id, "hold", secret, swapped)) == {
        "forEachContext.stack[0].parentNodeId",
        "forEachContext.stack[1].parentNodeId",
    }
    assert env.grpc.get(execution_id).status == common_pb2.EXECUTION_STATUS_PAUSED


def test_a_legacy_flat_frame_that_does_not_fit_is_named_by_its_flat_fields(env: Env) -> None:
    execution_id, secret = env.run(nested_loops(), {"rows": [["a"]]})
    env.waiting(execution_id, "hold", (0, 0))
    flat = {"forEachContext": {"index": 0, "parentNodeId": "for_each_cell", "total": 1}}
    assert fields(env.resume(execution_id, "hold", secret, flat)) == {
        "forEachContext.parentNodeId",
        "forEachContext.stack",
    }
    assert env.grpc.get(execution_id).status == common_pb2.EXECUTION_STATUS_PAUSED


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b"null", b'"text"', b"\xff\xfe", b"[" * 50_000, b'{"data": NaN}']
)
def test_bodies_that_are_not_objects_never_500(env: Env, raw: bytes) -> None:
    response = env.http.post(
        "/v1/runs/exec_x/nodes/hold/resume",
        params={"secret": "s"},
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "details"}


def test_the_openapi_document_lists_the_route(env: Env) -> None:
    operation = env.http.get("/openapi.json").json()["paths"]["/v1/runs/{id}/nodes/{nodeId}/resume"]["post"]
    assert {"400", "401", "404", "200"} <= set(operation["responses"])
    (secret,) = [p for p in operation["parameters"] if p["in"] == "query"]
    assert secret["name"] == "secret" and secret["required"] is True
