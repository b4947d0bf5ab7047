"""Size limits over the real gRPC API and HTTP: each refused with its documented status before anything is
stored, and a request just under it accepted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from runctl.messages import as_definition
from runctl.v1 import batch_pb2, batch_pb2_grpc, common_pb2, execution_pb2, workflow_pb2
from runctl_server.settings import Limits, Settings, SettingsError
from tests.engine_helpers import Client, linear, to_struct
from tests.support import running_server, settings_for

MESSAGE = 64 * 1024
NODES = 10
INPUT = 2_000
RESUME = 1_500
LIMITS = Limits(
    max_grpc_message_bytes=MESSAGE, max_workflow_nodes=NODES, max_input_bytes=INPUT, max_resume_bytes=RESUME
)
WAITS = linear({"id": "hold", "type": "wait"}, name="waits")


class Env:
    def __init__(self, client: Client, http: httpx.Client) -> None:
        self.grpc = client
        self.http = http

    def executions(self) -> int:
        reply = self.grpc.executions.ListExecutions(execution_pb2.ListExecutionsRequest(), timeout=10)
        return int(reply.total_size)

    def workflows(self) -> int:
        request = workflow_pb2.ListWorkflowsRequest(page_size=1000)
        return len(self.grpc.workflows.ListWorkflows(request, timeout=10).workflows)

    def create_workflow(self, document: dict[str, Any]) -> workflow_pb2.Workflow:
        request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(document))
        return self.grpc.workflows.CreateWorkflow(request, timeout=10).workflow

    def waiting(self, execution_id: str) -> str:
        """Poll until the run's `hold` node waits; answers its context id."""
        deadline = time.monotonic() + 20
        while True:
            for node in self.grpc.get(execution_id).nodes:
                if (
                    node.node_id == "hold"
                    and node.status == common_pb2.NODE_STATUS_WAITING
                    and node.context_id
                ):
                    return str(node.context_id)
            assert time.monotonic() < deadline, "hold never waited"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with (
        running_server(settings_for(url, limits=LIMITS)) as server,
        Client(server.grpc_target) as client,
        httpx.Client(base_url=server.http_url, timeout=10) as http,
    ):
        yield Env(client, http)


def of_size(size: int) -> dict[str, str]:
    """An object whose compact JSON is exactly `size` bytes."""
    return {"s": "x" * (size - len('{"s":""}'))}


def nodes(count: int) -> dict[str, Any]:
    """A linear workflow of `count` nodes in all."""
    return linear(*({"id": f"n{i}", "type": "log", "config": {"message": "m"}} for i in range(count - 2)))


def refused(call: Callable[[], Any], code: grpc.StatusCode) -> dict[str, str]:
    """Call, expect `code`, and answer the field violations of the error."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert error.code() == code, error.details()
    found: dict[str, str] = {}
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.update({v.field: v.description for v in bad_request.field_violations})
    return found


# -- gRPC message size ---------------------------------------------------------------------------


def test_a_grpc_message_over_the_limit_is_resource_exhausted(env: Env) -> None:
    before = env.workflows()
    too_big = {**linear(), "description": "d" * MESSAGE}
    refused(lambda: env.create_workflow(too_big), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert env.workflows() == before
    just_under = {**linear(), "description": "d" * (MESSAGE - 1024)}
    assert env.create_workflow(just_under).id
    assert env.workflows() == before + 1


# -- nodes per workflow --------------------------------------------------------------------------


def test_a_workflow_over_the_node_limit_is_invalid_argument(env: Env) -> None:
    runs, workflows = env.executions(), env.workflows()
    found = refused(lambda: env.grpc.start(nodes(NODES + 1)).id, grpc.StatusCode.INVALID_ARGUMENT)
    assert any(field.endswith("nodes") and f"at most {NODES}" in text for field, text in found.items()), found
    found = refused(lambda: env.create_workflow(nodes(NODES + 1)), grpc.StatusCode.INVALID_ARGUMENT)
    assert any(field.endswith("nodes") for field in found), found
    assert (env.executions(), env.workflows()) == (runs, workflows)
    assert env.grpc.run(nodes(NODES)).status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert env.create_workflow(nodes(NODES)).id


def test_loop_bodies_count_towards_the_node_limit(env: Env) -> None:
    body = [{"id": f"b{i}", "type": "log", "config": {"message": "m"}} for i in range(NODES - 2)]
    loop = {"id": "each", "type": "for_each", "config": {"items": "input"}, "body": {"nodes": body}}
    runs = env.executions()
    refused(lambda: env.grpc.start(linear(loop)).id, grpc.StatusCode.INVALID_ARGUMENT)
    assert env.executions() == runs


# -- run input -----------------------------------------------------------------------------------


def test_input_over_the_limit_is_invalid_argument(env: Env) -> None:
    runs = env.executions()
    found = refused(
        lambda: env.grpc.start(linear(), input=of_size(INPUT + 1)).id, grpc.StatusCode.INVALID_ARGUMENT
    )
    assert found == {"input": f"is larger than {INPUT} bytes (the input limit)"}
    assert env.executions() == runs
    assert env.grpc.run(linear(), of_size(INPUT)).status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert env.executions() == runs + 1


def test_batch_input_over_the_limit_is_invalid_argument(env: Env) -> None:
    workflow_id = env.create_workflow(linear()).id
    stub = batch_pb2_grpc.BatchServiceStub(env.grpc.channel)
    runs = env.executions()
    request = batch_pb2.StartBatchRequest(
        workflow_ids=batch_pb2.WorkflowIdList(ids=[workflow_id]), input=to_struct(of_size(INPUT + 1))
    )
    found = refused(lambda: stub.StartBatch(request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(found) == {"input"}
    assert env.executions() == runs


# -- resume data ---------------------------------------------------------------------------------


def test_resume_values_over_the_limit_are_invalid_argument(env: Env) -> None:
    execution_id = env.grpc.start(WAITS).id
    context_id = env.waiting(execution_id)

    def resume(size: int) -> execution_pb2.ResumePausePointResponse:
        request = execution_pb2.ResumePausePointRequest(
            context_id=context_id, values=to_struct(of_size(size))
        )
        return env.grpc.executions.ResumePausePoint(request, timeout=10)

    found = refused(lambda: resume(RESUME + 1), grpc.StatusCode.INVALID_ARGUMENT)
    assert found == {"values": f"is larger than {RESUME} bytes (the resume limit)"}
    assert env.waiting(execution_id) == context_id  # still waiting: nothing was stored
    assert resume(RESUME).action == execution_pb2.RESUME_ACTION_RESUMED
    assert env.grpc.wait(execution_id).status == common_pb2.EXECUTION_STATUS_COMPLETED


def test_resume_node_data_over_the_limit_is_invalid_argument(env: Env) -> None:
    workflow = env.create_workflow(WAITS)
    start = execution_pb2.StartExecutionRequest(workflow_id=workflow.id)
    execution_id = env.grpc.executions.StartExecution(start, timeout=10).execution.id
    context_id = env.waiting(execution_id)

    def resume(size: int) -> execution_pb2.ResumeNodeResponse:
        request = execution_pb2.ResumeNodeRequest(
            execution_id=execution_id,
            node_id="hold",
            secret=workflow.webhook_secret,
            data=to_struct(of_size(size)),
        )
        return env.grpc.executions.ResumeNode(request, timeout=10)

    found = refused(lambda: resume(RESUME + 1), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(found) == {"data"}
    assert env.waiting(execution_id) == context_id
    # Over HTTP the same limit answers 400, and the node still waits.
    path = f"/v1/runs/{execution_id}/nodes/hold/resume"
    response = env.http.post(
        path, params={"secret": workflow.webhook_secret}, json={"data": of_size(RESUME + 1)}
    )
    assert response.status_code == 400, response.text
    assert env.waiting(execution_id) == context_id
    assert resume(RESUME).action == execution_pb2.RESUME_ACTION_RESUMED


# -- HTTP ----------------------------------------------------------------------------------------


def test_http_refuses_each_limit_before_storing(env: Env) -> None:
    runs = env.executions()
    big_input = env.http.post(
        "/api/workflows/execute", json={"workflow": linear(), "input": of_size(INPUT + 1)}
    )
    assert big_input.status_code == 400, big_input.text
    assert "input" in big_input.text
    many_nodes = env.http.post("/api/workflows/execute", json={"workflow": nodes(NODES + 1)})
    assert many_nodes.status_code == 400, many_nodes.text
    assert f"at most {NODES}" in many_nodes.text
    huge_body = env.http.post("/api/workflows/execute", content=b"{" + b" " * 1_100_000 + b"}")
    assert huge_body.status_code == 413
    assert env.executions() == runs
    accepted = env.http.post(
        "/api/workflows/execute", json={"workflow": nodes(NODES), "input": of_size(INPUT)}
    )
    assert accepted.status_code < 300, accepted.text
    assert env.executions() == runs + 1


# -- settings ------------------------------------------------------------------------------------


def test_limits_have_safe_defaults_and_come_from_the_environment() -> None:
    assert Settings.from_env({}).limits == Limits(4 * 1024 * 1024, 1_000, 1_000_000, 1_000_000)
    env = {
        "RUNCTL_MAX_GRPC_MESSAGE_BYTES": "65536",
        "RUNCTL_MAX_WORKFLOW_NODES": "50",
        "RUNCTL_MAX_INPUT_BYTES": "4096",
        "RUNCTL_MAX_RESUME_BYTES": "2048",
    }
    assert Settings.from_env(env).limits == Limits(65536, 50, 4096, 2048)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RUNCTL_MAX_GRPC_MESSAGE_BYTES", "4MiB", "not a whole number"),
        ("RUNCTL_MAX_GRPC_MESSAGE_BYTES", "100", "at least 1024"),
        ("RUNCTL_MAX_WORKFLOW_NODES", "0", "at least 1"),
        ("RUNCTL_MAX_INPUT_BYTES", "-1", "at least 2"),
        ("RUNCTL_MAX_RESUME_BYTES", "lots", "not a whole number"),
    ],
)
def test_bad_limits_are_settings_errors(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}: .*{message}"):
        Settings.from_env({variable: value})
