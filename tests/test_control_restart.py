"""Holds are rows: an operator's pause and a workflow's pause outlive a server restart."""

from __future__ import annotations

from pathlib import Path

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from tests.engine_helpers import Client, linear, node_reached, node_status
from tests.support import running_server, settings_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
QUEUED = common_pb2.EXECUTION_STATUS_QUEUED

DOC = linear(
    {"id": "nap", "type": "delay", "config": {"seconds": 0.2}},
    {"id": "after", "type": "log", "config": {"message": "after"}},
)


def test_operator_and_workflow_pauses_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    with running_server(settings_for(url)) as handle, Client(handle.grpc_target) as client:
        workflow_id = client.workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=as_definition(DOC)), timeout=10
        ).workflow.id
        client.workflows.PauseWorkflow(workflow_pb2.PauseWorkflowRequest(workflow_id=workflow_id), timeout=10)
        queued = client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(workflow_id=workflow_id), timeout=10
        ).execution.id
        held = client.start(DOC).id
        client.executions.PauseExecution(execution_pb2.PauseExecutionRequest(execution_id=held), timeout=10)
        client.wait(held, until=(PAUSED,))

    with running_server(settings_for(url)) as handle, Client(handle.grpc_target) as client:
        # The delay ends (a status the server reports) and what follows it must still wait; a run
        # started and finished after the restart shows the scheduler has taken up the queue.
        still = node_reached(client, held, "nap")
        assert still.status == PAUSED and node_status(still).get("after", "idle") == "idle"
        client.run(linear(name="after-restart"))
        assert client.get(queued).status == QUEUED
        client.workflows.ResumeWorkflow(
            workflow_pb2.ResumeWorkflowRequest(workflow_id=workflow_id), timeout=10
        )
        assert client.wait(queued).status == COMPLETED
        client.executions.ResumeExecution(execution_pb2.ResumeExecutionRequest(execution_id=held), timeout=10)
        assert client.wait(held).status == COMPLETED
