"""The local runner API over real HTTP: every route with its documented curl requests, the answers' shapes
field by field (exact key sets, types, casing), and the error cases with the runner's error body."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import batch_pb2, batch_pb2_grpc, batch_resource_pb2, common_pb2, execution_pb2, workflow_pb2
from tests.engine_helpers import Client, linear
from tests.support import ServerThread, eventually, running_server, settings_for, wait_for

E = execution_pb2
B = batch_pb2
PAUSED = (common_pb2.EXECUTION_STATUS_PAUSED,)
STATUS_KEYS = {"executionId", "status", "currentNodeId", "pausedNodeId", "pauseReason"}
ERROR_KEYS = {"success", "message", "error", "details"}
BATCH_KEYS = {
    *("batchId", "status", "sourceType", "folderPath", "totalWorkflows", "completed", "running"),
    *("queued", "failed", "startTime", "endTime", "executions"),
}
SUMMARY_KEYS = {
    *("batchId", "status", "sourceType", "folderPath", "totalWorkflows", "completed", "failed"),
    *("startTime", "endTime", "duration"),
}


def waits(node_id: str = "w") -> dict[str, Any]:
    return linear({"id": node_id, "type": "wait"}, name="waits")


def breakpoints() -> dict[str, Any]:
    return linear(
        {"id": "first", "type": "log", "config": {"message": "one"}, "breakpoint": True},
        {"id": "second", "type": "log", "config": {"message": "two"}, "breakpoint": True},
        name="breakpoints",
    )


@dataclass
class Env:
    http: httpx.Client
    client: Client
    batches: batch_pb2_grpc.BatchServiceStub
    root: Path

    def paused(self, document: dict[str, Any] | None = None) -> str:
        execution_id = self.client.start(document or waits()).id
        self.client.wait(execution_id, until=PAUSED)
        return execution_id

    def folder(self, files: dict[str, dict[str, Any]]) -> str:
        name = f"sample-{uuid.uuid4().hex[:8]}"
        (self.root / name).mkdir()
        for file_name, document in files.items():
            (self.root / name / file_name).write_text(json.dumps(document))
        return name

    def batch(self, **kwargs: Any) -> batch_resource_pb2.Batch:
        return self.batches.StartBatch(B.StartBatchRequest(**kwargs), timeout=20).batch

    def get_batch(self, batch_id: str) -> batch_resource_pb2.Batch:
        return self.batches.GetBatch(B.GetBatchRequest(batch_id=batch_id), timeout=10).batch

    def wait_batch(self, batch_id: str, paused: int = 0, ended: bool = False) -> batch_resource_pb2.Batch:
        def arrived() -> batch_resource_pb2.Batch | None:
            batch: batch_resource_pb2.Batch = self.get_batch(batch_id)
            if ended:
                return batch if batch.status != batch_resource_pb2.BATCH_STATUS_RUNNING else None
            return batch if batch.paused >= paused else None

        return wait_for(arrived, timeout=20, what=f"batch {batch_id} to have {paused} paused or to end")

    def reset(self) -> None:
        """Stop what earlier tests left active, so the counts of a test are exact."""
        assert self.http.post("/api/workflows/execution/stop-all").status_code == 200


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("workflows")
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    handle: ServerThread
    with (
        running_server(settings_for(url, workflows_dirs=(root,))) as handle,
        Client(handle.grpc_target) as client,
        httpx.Client(base_url=handle.http_url, timeout=10) as http,
    ):
        yield Env(http, client, client.batches, root)


def assert_runner_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS and body["success"] is False
    assert isinstance(body["message"], str) and body["message"] == body["error"]
    for word in words:
        assert word in body["message"] or any(word in json.dumps(d) for d in body["details"]), body
    return dict(body)


# -- execution status -----------------------------------------------------------------------------


def test_status_of_a_run_paused_at_a_wait_node(env: Env) -> None:
    execution_id = env.paused()
    # curl http://localhost:3003/api/workflows/execution/exec-1709856234567
    by_path = env.http.get(f"/api/workflows/execution/{execution_id}")
    assert by_path.status_code == 200
    assert by_path.json() == {
        "executionId": execution_id,
        "status": "running",
        "currentNodeId": "w",
        "pausedNodeId": "w",
        "pauseReason": "wait-pause",
    }
    # curl "http://localhost:3003/api/workflows/execution/status?executionId=exec-1709856234567"
    by_query = env.http.get("/api/workflows/execution/status", params={"executionId": execution_id})
    assert by_query.json() == by_path.json()
    # curl http://localhost:3003/api/workflows/execution/status (the most recent execution)
    assert env.http.get("/api/workflows/execution/status").json() == by_path.json()
    assert env.http.get("/api/workflows/execution/status?executionId=").json() == by_path.json()


def test_status_of_breakpoint_manual_completed_and_failed_runs(env: Env) -> None:
    at_breakpoint = env.paused(breakpoints())
    body = env.http.get(f"/api/workflows/execution/{at_breakpoint}").json()
    assert (body["status"], body["pausedNodeId"], body["pauseReason"]) == ("running", "first", "breakpoint")

    manual = env.client.start(linear({"id": "nap", "type": "delay", "config": {"seconds": 0.2}})).id
    env.client.executions.PauseExecution(E.PauseExecutionRequest(execution_id=manual), timeout=10)
    env.client.wait(manual, until=PAUSED)
    body = env.http.get(f"/api/workflows/execution/{manual}").json()
    assert set(body) == STATUS_KEYS and (body["status"], body["pauseReason"]) == ("running", "manual-pause")

    done = env.client.run(linear(name="done")).id
    assert env.http.get(f"/api/workflows/execution/{done}").json() == {
        "executionId": done,
        "status": "completed",
        "currentNodeId": None,
        "pausedNodeId": None,
        "pauseReason": None,
    }
    failed = env.client.run(linear({"id": "boom", "type": "fail", "config": {"message": "kaboom"}})).id
    body = env.http.get(f"/api/workflows/execution/{failed}").json()
    assert set(body) == {*STATUS_KEYS, "error"}
    assert body["status"] == "error" and "kaboom" in body["error"] and body["pauseReason"] is None


def test_status_of_a_queued_run_is_idle(env: Env) -> None:
    workflow_id = env.client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear())), timeout=10
    ).workflow.id
    env.client.workflows.PauseWorkflow(workflow_pb2.PauseWorkflowRequest(workflow_id=workflow_id), timeout=10)
    queued = env.client.executions.StartExecution(
        E.StartExecutionRequest(workflow_id=workflow_id), timeout=10
    ).execution.id
    body = env.http.get(f"/api/workflows/execution/{queued}").json()
    assert body == {
        "executionId": queued,
        "status": "idle",
        "currentNodeId": None,
        "pausedNodeId": None,
        "pauseReason": None,
    }
    stopped = env.http.post("/api/workflows/execution/stop", json={"executionId": queued}).json()
    assert (stopped["wasRunning"], stopped["wasQueued"]) == (False, True)


def test_unknown_execution_is_404_with_the_runner_error_body(env: Env) -> None:
    assert_runner_error(
        env.http.get("/api/workflows/execution/exec-1709856234567"), 404, "exec-1709856234567"
    )
    assert_runner_error(
        env.http.get("/api/workflows/execution/status", params={"executionId": "exec-missing"}), 404
    )


# -- active executions, stop, stop all ------------------------------------------------------------


def test_active_executions(env: Env) -> None:
    env.reset()
    older, newer = env.paused(), env.paused(breakpoints())
    # curl http://localhost:3003/api/workflows/executions/active
    response = env.http.get("/api/workflows/executions/active")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"totalActive", "executions"} and body["totalActive"] == 2
    assert body["executions"] == [
        {
            "executionId": newer,
            "status": "running",
            "currentNodeId": "first",  # where the run stands: at its breakpoint
            "pausedNodeId": "first",
            "pauseReason": "breakpoint",
        },
        {
            "executionId": older,
            "status": "running",
            "currentNodeId": "w",
            "pausedNodeId": "w",
            "pauseReason": "wait-pause",
        },
    ]
    env.reset()
    assert env.http.get("/api/workflows/executions/active").json() == {"totalActive": 0, "executions": []}


def test_active_execution_that_runs_has_three_keys(env: Env) -> None:
    env.reset()
    running = env.client.start(linear({"id": "nap", "type": "delay", "config": {"seconds": 30}})).id
    env.client.wait(running, until=(common_pb2.EXECUTION_STATUS_RUNNING,))

    def active_item() -> None:
        item = env.http.get("/api/workflows/executions/active").json()["executions"][0]
        assert item == {"executionId": running, "status": "running", "currentNodeId": "nap"}

    eventually(active_item)
    env.reset()


def test_stop_an_execution(env: Env) -> None:
    execution_id = env.paused()
    # curl -X POST .../api/workflows/execution/stop -H "Content-Type: application/json" -d '{...}'
    response = env.http.post("/api/workflows/execution/stop", json={"executionId": execution_id})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Execution stopped",
        "executionId": execution_id,
        "wasRunning": True,
        "wasQueued": False,
    }
    assert env.http.get(f"/api/workflows/execution/{execution_id}").json()["status"] == "stopped"
    assert_runner_error(
        env.http.post("/api/workflows/execution/stop", json={"executionId": execution_id}), 409, "ended"
    )


def test_stop_without_an_id_stops_the_most_recent_active_run(env: Env) -> None:
    env.reset()
    older, newer = env.paused(), env.paused()
    body = env.http.post("/api/workflows/execution/stop").json()
    assert body["executionId"] == newer and body["wasRunning"] is True
    body = env.http.post("/api/workflows/execution/stop", json={}).json()
    assert body["executionId"] == older
    assert_runner_error(env.http.post("/api/workflows/execution/stop"), 404, "no active execution")


def test_routes_without_an_id_pick_the_most_recent_run_that_qualifies(env: Env) -> None:
    """gRPC has no "most recent" default; these local runner routes pick the run themselves, each with its
    own rule: the newest run for status, the newest unfinished one for stop and trace logs, the newest
    paused one for continue and pause control."""
    env.reset()
    paused = env.paused()
    running = env.client.start(linear({"id": "nap", "type": "delay", "config": {"seconds": 30}})).id
    env.client.wait(running, until=(common_pb2.EXECUTION_STATUS_RUNNING,))
    done = env.client.run(linear()).id
    assert env.http.get("/api/workflows/execution/status").json()["executionId"] == done
    traced = env.http.post("/api/workflows/execution/trace-logs", json={"enabled": True}).json()
    assert traced["executionId"] == running
    assert env.client.get(running).trace_logs and not env.client.get(paused).trace_logs
    assert env.http.post("/api/workflows/execution/continue").json()["success"] is True
    assert env.client.wait(paused).status == common_pb2.EXECUTION_STATUS_COMPLETED  # the paused one went on
    assert_runner_error(env.http.post("/api/workflows/execution/continue"), 404, "no paused execution")
    assert env.http.post("/api/workflows/execution/stop").json()["executionId"] == running
    assert_runner_error(
        env.http.post("/api/workflows/execution/trace-logs", json={"enabled": True}),
        404,
        "no unfinished execution",
    )


def test_stop_refuses_bad_bodies(env: Env) -> None:
    broken = env.http.post(
        "/api/workflows/execution/stop",
        content=b'{"executionId": ',
        headers={"content-type": "application/json"},
    )
    assert_runner_error(broken, 400, "JSON")
    assert_runner_error(env.http.post("/api/workflows/execution/stop", json=["x"]), 400, "JSON object")
    assert_runner_error(
        env.http.post("/api/workflows/execution/stop", json={"executionId": 5}), 400, "string"
    )
    assert_runner_error(env.http.post("/api/workflows/execution/stop", json={"executionId": "nope"}), 404)


def test_stop_all_stops_batches_and_runs(env: Env) -> None:
    env.reset()
    loose = env.paused()
    folder = env.folder({f"workflow{i}.json": waits() for i in (1, 2, 3)})
    batch = env.batch(folder_path=folder, concurrency=1)
    env.wait_batch(batch.batch_id, paused=1)
    # curl -X POST http://localhost:3003/api/workflows/execution/stop-all
    response = env.http.post("/api/workflows/execution/stop-all")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "All executions stopped",
        "totalBatches": 1,
        "totalStopped": 4,
        "runningStopped": 2,
        "queuedCancelled": 2,
        "batches": [batch.batch_id],
    }
    assert env.http.get(f"/api/workflows/execution/{loose}").json()["status"] == "stopped"
    again = env.http.post("/api/workflows/execution/stop-all").json()
    assert again["totalStopped"] == 0 and again["batches"] == []


# -- batches ----------------------------------------------------------------------------------------


def test_batch_status_with_its_executions(env: Env) -> None:
    env.reset()
    folder = env.folder(
        {"workflow1.json": linear(name="one"), "workflow2.json": waits(), "workflow3.json": waits()}
    )
    before = int(time.time() * 1000)
    batch = env.batch(folder_path=folder, concurrency=1)
    env.wait_batch(batch.batch_id, paused=1)

    def with_a_completed_run() -> dict[str, Any]:
        body: dict[str, Any] = env.http.get(f"/api/workflows/execution/batch/{batch.batch_id}").json()
        assert body["completed"] >= 1, body
        return body

    body = eventually(with_a_completed_run)
    assert set(body) == BATCH_KEYS
    assert body["batchId"] == batch.batch_id
    assert (body["status"], body["sourceType"], body["folderPath"]) == ("running", "folder", folder)
    assert (body["totalWorkflows"], body["completed"], body["running"], body["queued"], body["failed"]) == (
        3,
        1,
        1,
        1,
        0,
    )
    assert isinstance(body["startTime"], int) and abs(body["startTime"] - before) < 60_000
    assert body["endTime"] is None
    first, second, third = body["executions"]
    assert first == {
        "executionId": first["executionId"],
        "workflowFileName": "workflow1.json",
        "workflowPath": first["workflowPath"],
        "status": "completed",
    }
    assert first["workflowPath"].endswith(f"{folder}/workflow1.json")
    assert second == {
        "executionId": second["executionId"],
        "workflowFileName": "workflow2.json",
        "workflowPath": second["workflowPath"],
        "status": "running",
        "currentNodeId": "w",
    }
    assert set(third) == {"executionId", "workflowFileName", "workflowPath", "status"}
    assert third["status"] == "queued"

    # curl -X POST http://localhost:3003/api/workflows/execution/batch/batch-1709856234567/stop
    stopped = env.http.post(f"/api/workflows/execution/batch/{batch.batch_id}/stop")
    assert stopped.status_code == 200
    assert stopped.json() == {
        "success": True,
        "message": "Batch stopped",
        "batchId": batch.batch_id,
        "stoppedExecutions": 2,
        "runningStopped": 1,
        "queuedCancelled": 1,
    }
    env.wait_batch(batch.batch_id, ended=True)
    ended = env.http.get(f"/api/workflows/execution/batch/{batch.batch_id}").json()
    assert ended["status"] == "stopped" and isinstance(ended["endTime"], int)
    assert ended["endTime"] >= ended["startTime"]
    assert [item["status"] for item in ended["executions"]] == ["completed", "stopped", "stopped"]
    assert_runner_error(env.http.post(f"/api/workflows/execution/batch/{batch.batch_id}/stop"), 409)


def test_batch_of_stored_workflows_names_them_by_id(env: Env) -> None:
    workflow_id = env.client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear(name="stored"))),
        timeout=10,
    ).workflow.id
    batch = env.batch(workflow_ids=B.WorkflowIdList(ids=[workflow_id]))
    env.wait_batch(batch.batch_id, ended=True)
    body = env.http.get(f"/api/workflows/execution/batch/{batch.batch_id}").json()
    assert set(body) == BATCH_KEYS - {"folderPath"} and body["sourceType"] == "workflows"
    (item,) = body["executions"]
    assert item == {"executionId": item["executionId"], "workflowId": workflow_id, "status": "completed"}


def test_unknown_batch_is_404(env: Env) -> None:
    assert_runner_error(env.http.get("/api/workflows/execution/batch/batch-1709856234567"), 404)
    assert_runner_error(env.http.post("/api/workflows/execution/batch/batch-1709856234567/stop"), 404)


def test_batch_history_pages_and_filters(env: Env) -> None:
    env.reset()
    done = env.batch(folder_path=env.folder({"a.json": linear(), "b.json": linear()}))
    files = env.folder({"ok.json": linear(), "bad.json": linear({"id": "x", "type": "fail"})})
    failing = env.batch(workflow_paths=B.WorkflowPathList(paths=[f"{files}/bad.json"]))
    env.wait_batch(done.batch_id, ended=True)
    env.wait_batch(failing.batch_id, ended=True)
    # curl "http://localhost:3003/api/workflows/executions/batches?limit=20&offset=0"
    response = env.http.get("/api/workflows/executions/batches?limit=20&offset=0")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"total", "limit", "offset", "batches"}
    assert (body["limit"], body["offset"]) == (20, 0) and body["total"] == len(body["batches"]) >= 2
    newest, second = body["batches"][:2]
    assert newest["batchId"] == failing.batch_id and second["batchId"] == done.batch_id
    assert set(second) == SUMMARY_KEYS and set(newest) == SUMMARY_KEYS - {"folderPath"}
    assert (newest["status"], newest["sourceType"], newest["completed"], newest["failed"]) == (
        "completed",
        "files",
        0,
        1,
    )
    assert (second["sourceType"], second["totalWorkflows"], second["completed"]) == ("folder", 2, 2)
    for item in (newest, second):
        assert isinstance(item["startTime"], int) and isinstance(item["endTime"], int)
        assert item["duration"] == item["endTime"] - item["startTime"] >= 0
    # curl "http://localhost:3003/api/workflows/executions/batches?status=completed&limit=20"
    completed = env.http.get("/api/workflows/executions/batches?status=completed&limit=20").json()
    assert {b["status"] for b in completed["batches"]} == {"completed"}
    assert completed["total"] == len(completed["batches"])
    stopped = env.http.get("/api/workflows/executions/batches", params={"status": "stopped"}).json()
    assert all(b["status"] == "stopped" for b in stopped["batches"])
    assert completed["total"] + stopped["total"] == body["total"]
    # curl "http://localhost:3003/api/workflows/executions/batches?limit=20&offset=20"
    later = env.http.get("/api/workflows/executions/batches?limit=20&offset=20").json()
    assert (later["limit"], later["offset"], later["batches"]) == (20, 20, [])
    one = env.http.get("/api/workflows/executions/batches?limit=1&offset=1").json()
    assert [b["batchId"] for b in one["batches"]] == [done.batch_id] and one["total"] == body["total"]
    assert env.http.get("/api/workflows/executions/batches").json()["limit"] == 20
    assert env.http.get("/api/workflows/executions/batches?limit=5000").json()["limit"] == 100


@pytest.mark.parametrize(
    "query",
    ["limit=-1", "limit=abc", "limit=0", "limit=1.5", "offset=-3", "offset=x", "status=paused", "limit=1e99"],
)
def test_batch_history_refuses_bad_queries(env: Env, query: str) -> None:
    name = query.split("=")[0]
    body = assert_runner_error(env.http.get(f"/api/workflows/executions/batches?{query}"), 400, name)
    assert {"field": name} in [{"field": d.get("field")} for d in body["details"]]


def test_clear_all_batches(env: Env) -> None:
    env.reset()
    finished = env.batch(folder_path=env.folder({"a.json": linear(), "b.json": linear()}))
    env.wait_batch(finished.batch_id, ended=True)
    # curl -X DELETE http://localhost:3003/api/workflows/executions/batches/clear
    response = env.http.delete("/api/workflows/executions/batches/clear")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "message", "batchesDeleted", "executionsDeleted"}
    assert body["success"] is True and body["message"] == "All batches and executions cleared"
    assert body["batchesDeleted"] >= 1 and body["executionsDeleted"] >= 2
    assert_runner_error(env.http.get(f"/api/workflows/execution/batch/{finished.batch_id}"), 404)
    assert env.http.get("/api/workflows/executions/batches").json() == {
        "total": 0,
        "limit": 20,
        "offset": 0,
        "batches": [],
    }
    running = env.batch(folder_path=env.folder({"w.json": waits()}))
    env.wait_batch(running.batch_id, paused=1)
    kept = env.http.delete("/api/workflows/executions/batches/clear").json()
    assert kept["batchesDeleted"] == 0 and kept["skippedBatches"] == [running.batch_id]
    env.reset()


# -- continue, trace logs, pause control ------------------------------------------------------------


def test_continue_a_paused_execution(env: Env) -> None:
    execution_id = env.paused(breakpoints())
    # curl -X POST .../api/workflows/execution/continue -H "Content-Type: application/json" -d '{...}'
    response = env.http.post("/api/workflows/execution/continue", json={"executionId": execution_id})
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Execution continued"}
    env.client.wait(execution_id, until=PAUSED)
    assert env.http.get(f"/api/workflows/execution/{execution_id}").json()["pausedNodeId"] == "second"
    assert env.http.post("/api/workflows/execution/continue").json()["success"] is True  # the most recent
    assert env.client.wait(execution_id).status == common_pb2.EXECUTION_STATUS_COMPLETED


def test_continue_errors(env: Env) -> None:
    env.reset()
    assert_runner_error(env.http.post("/api/workflows/execution/continue"), 404, "no paused execution")
    assert_runner_error(env.http.post("/api/workflows/execution/continue", json={"executionId": "nope"}), 404)
    done = env.client.run(linear()).id
    assert_runner_error(env.http.post("/api/workflows/execution/continue", json={"executionId": done}), 409)
    assert_runner_error(env.http.post("/api/workflows/execution/continue", json={"executionId": []}), 400)


def test_trace_logs(env: Env) -> None:
    execution_id = env.paused()
    # curl -X POST .../api/workflows/execution/trace-logs -d '{"enabled": true, "executionId": "..."}'
    response = env.http.post(
        "/api/workflows/execution/trace-logs", json={"enabled": True, "executionId": execution_id}
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Trace logs enabled",
        "executionId": execution_id,
        "enabled": True,
    }
    assert env.client.get(execution_id).trace_logs is True
    off = env.http.post("/api/workflows/execution/trace-logs", json={"enabled": False}).json()
    assert (off["executionId"], off["enabled"], off["message"]) == (
        execution_id,
        False,
        "Trace logs disabled",
    )
    for body in ({}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": None}):
        assert_runner_error(env.http.post("/api/workflows/execution/trace-logs", json=body), 400, "enabled")
    assert_runner_error(env.http.post("/api/workflows/execution/trace-logs"), 400, "body")
    env.http.post("/api/workflows/execution/stop", json={"executionId": execution_id})
    finished = {"enabled": True, "executionId": execution_id}
    assert_runner_error(env.http.post("/api/workflows/execution/trace-logs", json=finished), 409)


@pytest.mark.parametrize(
    ("action", "message", "outcome"),
    [
        ("continue", "Execution continued", "second"),
        ("skip", "Paused node skipped", "second"),
        ("continueWithoutBreakpoint", "Execution continued without breakpoints", "completed"),
        ("stop", "Execution stopped", "stopped"),
    ],
)
def test_pause_control(env: Env, action: str, message: str, outcome: str) -> None:
    execution_id = env.paused(breakpoints())
    # curl -X POST .../api/workflows/execution/pause-control -d '{"action": "continue", "executionId": ...}'
    response = env.http.post(
        "/api/workflows/execution/pause-control", json={"action": action, "executionId": execution_id}
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": message,
        "executionId": execution_id,
        "action": action,
    }
    if outcome == "second":
        env.client.wait(execution_id, until=PAUSED)
        body = env.http.get(f"/api/workflows/execution/{execution_id}").json()
        assert (body["pausedNodeId"], body["pauseReason"]) == ("second", "breakpoint")
        env.http.post("/api/workflows/execution/stop", json={"executionId": execution_id})
    else:
        env.client.wait(execution_id)
        assert env.http.get(f"/api/workflows/execution/{execution_id}").json()["status"] == outcome


def test_pause_control_errors(env: Env) -> None:
    env.reset()
    path = "/api/workflows/execution/pause-control"
    body = assert_runner_error(env.http.post(path, json={"action": "rewind"}), 400, "action", "rewind")
    assert {"field": "action"} in [{"field": d.get("field")} for d in body["details"]]
    assert_runner_error(env.http.post(path, json={}), 400, "action")
    assert_runner_error(env.http.post(path, json={"action": 3}), 400, "action")
    assert_runner_error(env.http.post(path), 400, "body")
    assert_runner_error(
        env.http.post(path, content=b"{nope", headers={"content-type": "application/json"}), 400
    )
    assert_runner_error(env.http.post(path, json={"action": "continue"}), 404, "no paused execution")
    done = env.client.run(linear()).id
    assert_runner_error(env.http.post(path, json={"action": "skip", "executionId": done}), 409)
    paused = env.paused()
    assert env.http.post(path, json={"action": "continue"}).json()["executionId"] == paused


def test_the_openapi_document_lists_every_runner_route(env: Env) -> None:
    paths = env.http.get("/openapi.json").json()["paths"]
    expected = {
        "/api/workflows/execution/{executionId}": "get",
        "/api/workflows/execution/status": "get",
        "/api/workflows/executions/active": "get",
        "/api/workflows/execution/stop": "post",
        "/api/workflows/execution/stop-all": "post",
        "/api/workflows/execution/batch/{batchId}": "get",
        "/api/workflows/executions/batches": "get",
        "/api/workflows/execution/batch/{batchId}/stop": "post",
        "/api/workflows/executions/batches/clear": "delete",
        "/api/workflows/execution/continue": "post",
        "/api/workflows/execution/trace-logs": "post",
        "/api/workflows/execution/pause-control": "post",
        "/api/workflows/execution/{executionId}/events": "get",
    }
    for path, method in expected.items():
        assert method in paths[path], path
    operation = paths["/api/workflows/execution/{executionId}"]["get"]
    assert operation["tags"] == ["local runner API"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == STATUS_KEYS
    events = paths["/api/workflows/execution/{executionId}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in events["content"]
