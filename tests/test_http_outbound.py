"""The workflow pause API over real HTTP: pause, resume, cancel and get a workflow; 404 and 409 as
documented."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import workflow_pb2
from tests.engine_helpers import Client, linear
from tests.support import ServerThread, running_server, settings_for


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
def workflow_id(server: ServerThread) -> str:
    with Client(server.grpc_target) as client:
        request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear()))
        return str(client.workflows.CreateWorkflow(request, timeout=10).workflow.id)


def test_pause_resume_cancel_and_get(http: httpx.Client, workflow_id: str) -> None:
    paused = http.post(f"/v1/workflows/{workflow_id}/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused" and paused.json()["id"] == workflow_id
    assert http.get(f"/v1/workflows/{workflow_id}").json()["status"] == "paused"
    again = http.post(f"/v1/workflows/{workflow_id}/pause")
    assert again.status_code == 409
    assert "paused" in again.json()["error"]
    assert http.post(f"/v1/workflows/{workflow_id}/resume").json()["status"] == "active"
    assert http.post(f"/v1/workflows/{workflow_id}/resume").status_code == 409
    cancelled = http.post(f"/v1/workflows/{workflow_id}/cancel", json={"reason": "campaign over"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert http.post(f"/v1/workflows/{workflow_id}/pause").status_code == 409


def test_missing_workflow_and_bad_bodies(http: httpx.Client) -> None:
    for path in ("/v1/workflows/wf_missing/pause", "/v1/workflows/wf_missing/resume"):
        missing = http.post(path)
        assert missing.status_code == 404
        assert set(missing.json()) == {"error", "details"}
    assert http.get("/v1/workflows/wf_missing").status_code == 404
    broken = http.post(
        "/v1/workflows/wf_x/pause", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]
    not_object = http.post("/v1/workflows/wf_x/pause", json=[1, 2])
    assert not_object.status_code == 400
    for not_json in (b'{"reason": NaN}', b'{"reason": 1e400}', b"[" * 50_000):
        refused = http.post("/v1/workflows/wf_x/pause", content=not_json)
        assert refused.status_code == 400, not_json[:20]
    huge = http.post("/v1/workflows/wf_x/pause", content=b"{" + b" " * 2_000_000 + b"}")
    assert huge.status_code == 413


def test_the_openapi_document_lists_the_routes(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"post"} <= set(document["paths"]["/v1/workflows/{id}/pause"])
