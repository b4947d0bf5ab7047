"""The operator console in a real browser: Debian's headless Chromium, driven by playwright-core.

A real server with an API key (so the console asks for it once), real runs made over gRPC, and
tests/browser/console.mjs acting as an operator: it watches a run's graph change colour as the run
goes on, approves a pause from the inbox, stops a run from its page, narrows the runs list with the
filters, watches a batch's bar move, and visits every page. On every page it collects uncaught script
errors and whatever the Content-Security-Policy refused (there must be none) and any control without
an accessible name. Screenshots of each page land in artifacts/console/ (RUNCTL_TEST_ARTIFACTS
overrides it); docs/console/ holds copies for the README.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl.messages import as_definition
from runctl.v1 import batch_pb2, batch_pb2_grpc, common_pb2, execution_pb2, workflow_pb2
from tests.engine_helpers import Client, linear, node_status, output, to_struct
from tests.support import ServerThread, create_api_key, running_server, settings_for
from tests.test_approval_page import BROWSER_DIR, browser_available

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("RUNCTL_TEST_ARTIFACTS", ROOT / "artifacts")) / "console"

# Laid out by its own positions (top-left corners), with a loop whose iterations the graph shows.
GRAPH_FLOW: dict[str, Any] = {
    "name": "Nightly report",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "hold", "type": "wait"},
        {"id": "greet", "type": "transform", "config": {"output": {"hello": "{{ input.name }}"}}},
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": "input.items"},
            "body": {"nodes": [{"id": "square", "type": "transform", "config": {"output": "{{ item }}"}}]},
        },
        {"id": "confirm", "type": "wait"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "hold"},
        {"from": "hold", "to": "greet"},
        {"from": "greet", "to": "each"},
        {"from": "each", "to": "confirm"},
        {"from": "confirm", "to": "end"},
    ],
    "positions": {
        "start": {"x": 0, "y": 0},
        "hold": {"x": 220, "y": 0},
        "greet": {"x": 440, "y": 0},
        "each": {"x": 440, "y": 120},
        "confirm": {"x": 220, "y": 120},
        "end": {"x": 0, "y": 120},
    },
}
APPROVAL = {
    "id": "approve",
    "type": "approval",
    "config": {
        "title": "Refund order {{ input.order }}?",
        "message": "Customer <b>{{ input.customer }}</b> asks for a refund.",
        "formFields": [
            {"name": "note", "type": "text", "label": "Note", "required": True},
            {"name": "amount", "type": "number", "label": "Amount"},
            {"name": "express", "type": "boolean", "label": "Express"},
        ],
    },
}
SLOW = linear({"id": "rest", "type": "delay", "config": {"seconds": 600}}, name="Takes its time")


@dataclasses.dataclass
class Console:
    handle: ServerThread
    key: str
    client: Client
    batches: batch_pb2_grpc.BatchServiceStub

    def create(self, document: dict[str, Any]) -> str:
        request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(document))
        return str(self.client.workflows.CreateWorkflow(request, timeout=10).workflow.id)

    def start(self, workflow_id: str, **input: Any) -> str:
        request = execution_pb2.StartExecutionRequest(workflow_id=workflow_id, input=to_struct(input))
        return str(self.client.executions.StartExecution(request, timeout=10).execution.id)

    def paused(self, execution_id: str) -> execution_pb2.Execution:
        return self.client.wait(execution_id, until=(common_pb2.EXECUTION_STATUS_PAUSED,))

    def drive(self, scenario: str, **arguments: Any) -> dict[str, Any]:
        """Run one scenario of tests/browser/console.mjs and answer what it saw."""
        browser_available()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        arguments.update(base=self.handle.http_url, key=self.key, shots=str(ARTIFACTS))
        done = subprocess.run(
            ["node", "console.mjs", scenario, json.dumps(arguments)],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"the browser script failed:\n{done.stderr}\n{done.stdout}"
        seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        # On every page: no script error, nothing refused by the policy, every control named.
        assert seen["problems"] == [], seen["problems"]
        assert seen["unlabelled"] == [], seen["unlabelled"]
        assert seen["askedForKey"] is True and seen["keyInUrl"] is False
        return seen


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    key = create_api_key(url, "operations")
    with (
        running_server(settings_for(url)) as handle,
        Client(handle.grpc_target, api_key=key) as client,
    ):
        yield Console(handle, key, client, client.batches)


def test_a_run_graph_changes_colour_as_the_run_goes_on(console: Console) -> None:
    workflow_id = console.create(GRAPH_FLOW)
    run = console.start(workflow_id, name="Ada", items=[1, 2, 3])
    console.paused(run)

    seen = console.drive("graph", run=run)

    assert seen["before"] == {
        "start": "completed",
        "hold": "waiting",
        "greet": "idle",
        "each": "idle",
        "confirm": "idle",
        "end": "idle",
    }
    # Laid out from the document's positions: greet's top-left corner is where the document says.
    assert seen["laidOut"] == [440, 0]
    assert seen["middle"]["hold"] == "completed" and seen["middle"]["each"] == "completed"
    assert seen["middle"]["confirm"] == "waiting" and seen["middle"]["end"] == "idle"
    assert seen["iterations"] == ["completed", "completed", "completed"]
    assert "Not valid JSON" in seen["badJson"]
    assert set(seen["after"].values()) == {"completed"}
    assert seen["samePage"] is True  # every change came live, without a reload
    assert seen["focused"] == "greet"
    assert "Node greet" in seen["details"] and '"hello": "Ada"' in seen["details"]
    assert "EVENT_TYPE_EXECUTION_COMPLETED" in seen["timeline"]

    execution = console.client.get(run)
    assert execution.status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert execution.trace_logs is True
    assert output(execution.data)["nodes"]["confirm"]["output"] == {"go": "ahead", "count": 3}


def test_a_paused_approval_is_approved_from_the_inbox(console: Console) -> None:
    workflow_id = console.create(linear(APPROVAL, name="Refunds"))
    older = console.start(workflow_id, order=7, customer="Old & Co")
    console.paused(older)
    run = console.start(workflow_id, order=42, customer="Ada & Co")
    console.paused(run)

    seen = console.drive("inbox", title="Refund order 42?", note="Refund <quickly>")

    # Oldest first; markup in a message is shown as text.
    assert seen["order"][:2] == ["Refund order 7?", "Refund order 42?"]
    assert seen["message"] == "Customer <b>Ada & Co</b> asks for a refund."
    assert run in seen["facts"] and "approve" in seen["facts"]
    assert seen["fieldError"] == "must be a number, got a string"
    assert seen["announced"] == "Approved"
    assert "Refund order 42?" not in seen["left"] and "Refund order 7?" in seen["left"]

    execution = console.client.wait(run)
    assert execution.status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert output(execution.data)["nodes"]["approve"]["output"] == {
        "approved": True,
        "note": "Refund <quickly>",
        "amount": 250,
        "express": True,
    }
    assert console.client.get(older).status == common_pb2.EXECUTION_STATUS_PAUSED


def test_a_run_is_paused_resumed_and_stopped_from_its_page(console: Console) -> None:
    run = console.start(console.create(SLOW))
    console.client.wait(run, until=(common_pb2.EXECUTION_STATUS_RUNNING,))

    seen = console.drive("stop", run=run)

    assert seen["pausedControls"] == ["Stop", "Resume"]
    assert seen["heading"] == "Takes its time stopped" and "Stop" not in seen["controls"]
    execution = console.client.get(run)
    assert execution.status == common_pb2.EXECUTION_STATUS_STOPPED
    assert node_status(execution)["rest"] == "stopped"


def test_filters_narrow_the_runs_list(console: Console) -> None:
    quick = console.create(linear({"id": "log", "type": "log", "config": {"message": "hi"}}, name="Quick"))
    slow = console.create(linear({"id": "hold", "type": "wait"}, name="Slow"))
    for _ in range(2):
        console.client.wait(console.start(quick))
    console.paused(console.start(slow))
    paused = console.client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(statuses=[common_pb2.EXECUTION_STATUS_PAUSED]), timeout=10
    ).total_size

    seen = console.drive("filters", workflowId=quick, workflowName="Quick", paused=paused, ofWorkflow=2)

    assert set(seen["all"]) >= {"completed", "paused"}
    assert seen["paused"] and set(seen["paused"]) == {"paused"}
    assert seen["ofWorkflow"] == ["Quick", "Quick"]
    assert seen["newFirst"] == seen["startedId"] and seen["samePage"] is True
    assert seen["future"] == 0


def test_a_batch_progress_bar_moves(console: Console) -> None:
    workflow_id = console.create(linear({"id": "hold", "type": "wait"}, name="Batch step"))
    request = batch_pb2.StartBatchRequest(
        workflow_ids=batch_pb2.WorkflowIdList(ids=[workflow_id, workflow_id]), concurrency=2
    )
    batch = console.batches.StartBatch(request, timeout=10).batch.batch_id

    seen = console.drive("batch", batch=batch)

    assert seen["labelBefore"] == "2 paused of 2"
    assert seen["progress"] == ["0", "1", "2"]
    assert seen["label"] == "2 completed of 2"
    assert seen["cleared"] == "Cleared 1 batch and 2 runs"
    left = console.batches.ListBatches(batch_pb2.ListBatchesRequest(), timeout=10).batches
    assert batch not in [item.batch_id for item in left]


def test_every_page_works_and_the_workflow_controls(console: Console) -> None:
    workflow_id = console.create(
        linear({"id": "greet", "type": "log", "config": {"message": "hi"}}, name="Tour")
    )
    run = console.client.wait(console.start(workflow_id)).id
    request = batch_pb2.StartBatchRequest(workflow_ids=batch_pb2.WorkflowIdList(ids=[workflow_id]))
    batch = console.batches.StartBatch(request, timeout=10).batch.batch_id

    seen = console.drive("tour", workflowId=workflow_id, run=run, batch=batch)

    assert seen["secret"] and seen["secretInUrl"] is False
    assert "shown only this once" in seen["secretNote"] and "keeps working until" in seen["secretNote"]
    assert "Not found" in seen["missing"]
    assert seen["framingRefused"] is True
    workflow = console.client.workflows.GetWorkflow(
        workflow_pb2.GetWorkflowRequest(workflow_id=workflow_id), timeout=10
    ).workflow
    assert workflow.status == workflow_pb2.WORKFLOW_STATUS_ACTIVE
