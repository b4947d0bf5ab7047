"""The console over plain HTTP: its page shells and assets (open, with a strict policy), and its JSON
API, which reaches the same servicers as gRPC in the caller's workspace, with the HTTP error bodies:
bad input is a 4xx that says what is wrong, never a 500."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from runctl_server.http import console_pages
from tests.engine_helpers import Client, linear
from tests.support import ServerThread, create_api_key, running_server, settings_for

PAGES = ["/", "/runs/exec_x", "/inbox", "/batches", "/batches/batch_x", "/workflows", "/workflows/wf_x"]


@dataclasses.dataclass
class Keyed:
    handle: ServerThread
    key: str
    other_key: str
    client: Client

    def post(self, path: str, body: Any = None, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"x-api-key": self.key if key is None else key, **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return httpx.post(f"{self.handle.http_url}/console/api/{path}", headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    key = create_api_key(url, "acme")
    other = create_api_key(url, "globex")
    with running_server(settings_for(url)) as handle, Client(handle.grpc_target, api_key=key) as client:
        yield Keyed(handle, key, other, client)


def started_run(server: Keyed) -> str:
    request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear(name="api")))
    workflow_id = server.client.workflows.CreateWorkflow(request, timeout=10).workflow.id
    start = execution_pb2.StartExecutionRequest(workflow_id=workflow_id)
    run = server.client.executions.StartExecution(start, timeout=10).execution.id
    server.client.wait(run)
    return str(run)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_the_shell_with_a_strict_policy_and_no_credentials(server: Keyed, path: str) -> None:
    answer = httpx.get(server.handle.http_url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert policy == console_pages.CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    # No data in the shell: only the script and stylesheet, by content hash.
    assert "<script" in answer.text and "style=" not in answer.text and "exec_x" not in answer.text
    assert "/console/assets/console.js?v=" in answer.text


def test_assets_are_served_with_validators_and_nothing_outside_them(server: Keyed) -> None:
    base = server.handle.http_url
    script = httpx.get(f"{base}/console/assets/console.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(
        f"{base}/console/assets/console.js", headers={"if-none-match": script.headers["etag"]}, timeout=10
    )
    assert again.status_code == 304
    css = httpx.get(f"{base}/console/assets/console.css", timeout=10)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert httpx.get(f"{base}/console/assets/missing.js", timeout=10).status_code == 404
    # Anything else under /console/ is not open: the API needs a key, other paths do not exist.
    assert httpx.get(f"{base}/console/assets/../app.py", timeout=10).status_code in (401, 404)
    assert httpx.get(f"{base}/console/other", timeout=10).status_code == 401


def test_the_api_needs_a_key(server: Keyed) -> None:
    answer = server.post("ExecutionService/ListExecutions", {}, key="")
    assert answer.status_code == 401
    assert answer.json()["details"] == [{"reason": "UNAUTHENTICATED"}]
    assert server.post("ExecutionService/ListExecutions", {}, key="rk_nonsense").status_code == 401


def test_the_api_answers_the_messages_as_proto_json(server: Keyed) -> None:
    run = started_run(server)
    answer = server.post("ExecutionService/GetExecution", {"executionId": run, "view": "EXECUTION_VIEW_FULL"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    execution = answer.json()["execution"]
    assert execution["id"] == run and execution["status"] == "EXECUTION_STATUS_COMPLETED"
    assert [node["nodeId"] for node in execution["nodes"]] == ["start", "end"]
    assert execution["definition"]["edges"] == [{"from": "start", "to": "end"}]
    listed = server.post(
        "ExecutionService/ListExecutions", {"statuses": ["EXECUTION_STATUS_COMPLETED"], "pageSize": 1}
    ).json()
    assert listed["executions"][0]["id"] == run and listed["totalSize"] >= 1
    future = server.post(
        "ExecutionService/ListExecutions", {"createTimeAfter": "2099-01-01T00:00:00Z"}
    ).json()
    assert future.get("executions", []) == []


def test_another_workspace_sees_nothing(server: Keyed) -> None:
    run = started_run(server)
    foreign = server.post("ExecutionService/GetExecution", {"executionId": run}, key=server.other_key)
    assert foreign.status_code == 404
    assert foreign.json()["details"] == [{"reason": "EXECUTION_NOT_FOUND"}]
    stop = server.post("ExecutionService/StopExecution", {"executionId": run}, key=server.other_key)
    assert stop.status_code == 404
    listed = server.post("ExecutionService/ListExecutions", {}, key=server.other_key).json()
    assert listed.get("executions", []) == []
    assert server.client.get(run).status == common_pb2.EXECUTION_STATUS_COMPLETED


def test_a_control_call_on_a_finished_run_is_a_conflict_with_its_reason(server: Keyed) -> None:
    run = started_run(server)
    answer = server.post("ExecutionService/PauseExecution", {"executionId": run})
    assert answer.status_code == 409
    assert answer.json()["details"][0]["reason"] == "EXECUTION_ENDED"


@pytest.mark.parametrize(
    ("path", "body", "status", "reason", "words"),
    [
        ("ExecutionService/Nope", {}, 404, "CONSOLE_METHOD_NOT_FOUND", "ExecutionService/ListExecutions"),
        ("WorkerService/CompleteTask", {}, 404, "CONSOLE_METHOD_NOT_FOUND", "not a method"),
        ("Nope/ListExecutions", {}, 404, "CONSOLE_METHOD_NOT_FOUND", "not a method"),
        ("ExecutionService/ListExecutions", {"pageSize": "many"}, 400, "INVALID_ARGUMENT", "pageSize"),
        ("ExecutionService/ListExecutions", {"colour": "red"}, 400, "INVALID_ARGUMENT", "colour"),
        ("ExecutionService/ListExecutions", {"statuses": ["BLUE"]}, 400, "INVALID_ARGUMENT", "BLUE"),
        (
            "ExecutionService/ListExecutions",
            {"createTimeAfter": "yesterday"},
            400,
            "INVALID_ARGUMENT",
            "createTimeAfter",
        ),
        ("ExecutionService/ListExecutions", {"pageSize": -1}, 400, "INVALID_ARGUMENT", "page_size"),
        ("ExecutionService/GetExecution", {}, 400, "INVALID_ARGUMENT", "execution_id"),
        (
            "ExecutionService/ResumePausePoint",
            {"contextId": "ctx_x", "values": [1]},
            400,
            "INVALID_ARGUMENT",
            "",
        ),
    ],
)
def test_bad_calls_say_what_is_wrong(
    server: Keyed, path: str, body: Any, status: int, reason: str, words: str
) -> None:
    answer = server.post(path, body)
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert payload["details"][0]["reason"] == reason
    assert words in payload["error"] + str(payload["details"])


@pytest.mark.parametrize(
    ("content", "content_type", "words"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b'{"pageSize": NaN}', "application/json", "NaN"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", "nested too deeply"),
        (b"{}", "text/plain", "Content-Type"),
        (b"{}", "", "Content-Type"),
    ],
)
def test_bad_bodies_are_400(server: Keyed, content: bytes, content_type: str, words: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = server.post("ExecutionService/ListExecutions", content=content, headers=headers)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"] + str(answer.json()["details"])


def test_a_body_over_the_limit_is_413(server: Keyed) -> None:
    answer = server.post(
        "ExecutionService/ListExecutions",
        content=b" " * 2_000_000,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413


def test_only_post(server: Keyed) -> None:
    answer = httpx.get(
        f"{server.handle.http_url}/console/api/ExecutionService/ListExecutions",
        headers={"x-api-key": server.key},
        timeout=10,
    )
    assert answer.status_code == 405


def test_in_dev_mode_the_console_needs_no_key(tmp_path: Path) -> None:
    with running_server(settings_for(f"sqlite:///{tmp_path / 'runctl.db'}")) as handle:
        page = httpx.get(f"{handle.http_url}/inbox", timeout=10)
        answer = httpx.post(
            f"{handle.http_url}/console/api/PausePointService/ListPausePoints",
            json={"resumeStatuses": ["RESUME_STATUS_PAUSED"]},
            timeout=10,
        )
    assert page.status_code == 200
    assert answer.status_code == 200 and answer.json() == {}
