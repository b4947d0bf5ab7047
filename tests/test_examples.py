"""Every workflow file in examples/ is valid, and the self-contained ones run as documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl.v1 import common_pb2, execution_pb2
from runctl_server.engine.definition import load_document, parse_definition
from runctl_server.engine.files import WORKFLOW_SUFFIXES
from runctl_server.nodes.registry import load_node_types
from tests.engine_helpers import Client, output, to_struct
from tests.support import running_server, settings_for

EXAMPLES = Path(__file__).parent.parent / "examples"
COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
ERROR = common_pb2.EXECUTION_STATUS_ERROR


# The files a batch of the folder would run; examples/ also holds helpers such as order-service.py.
WORKFLOW_FILES = sorted(path for path in EXAMPLES.iterdir() if path.suffix in WORKFLOW_SUFFIXES)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    definition = parse_definition(load_document(path.read_text(), filename=path.name), load_node_types())
    assert definition.name


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    db = tmp_path_factory.mktemp("db") / "runctl.db"
    with (
        running_server(settings_for(f"sqlite:///{db}", workflows_dirs=(EXAMPLES,))) as handle,
        Client(handle.grpc_target) as client,
    ):
        yield client


def _run_file(client: Client, name: str, data: dict[str, Any]) -> execution_pb2.Execution:
    request = execution_pb2.StartExecutionRequest(workflow_path=name, input=to_struct(data))
    return client.wait(client.executions.StartExecution(request, timeout=10).execution.id)


def test_hello(client: Client) -> None:
    assert output(_run_file(client, "hello.json", {"name": "Ada"}).output) == {"greeting": "Hello, Ada!"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"total": 250, "region": "eu"}, {"size": "large", "route": "ship from Rotterdam"}),
        ({"total": 20, "region": "us"}, {"size": "small", "route": "ship from Newark"}),
    ],
)
def test_branching(client: Client, data: dict[str, Any], expected: dict[str, str]) -> None:
    execution = _run_file(client, "branching.yaml", data)
    assert execution.status == COMPLETED
    assert output(execution.output) == expected


def test_branching_without_a_warehouse_fails(client: Client) -> None:
    execution = _run_file(client, "branching.yaml", {"total": 5, "region": "mars"})
    assert execution.status == ERROR and execution.error.code == "NO_WAREHOUSE"


def test_loops(client: Client) -> None:
    execution = _run_file(client, "loops.json", {"rows": [[1, 2], [3]]})
    assert [[cell["value"] for cell in row] for row in output(execution.output)] == [[1, 2], [3]]


def test_subworkflow(client: Client) -> None:
    execution = _run_file(client, "subworkflow.json", {"names": ["Ada", "Grace"]})
    assert execution.status == COMPLETED
    assert output(execution.output) == ["Hello, Ada!", "Hello, Grace!"]
