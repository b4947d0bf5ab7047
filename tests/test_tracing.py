"""OpenTelemetry tracing of a real server, recorded with the SDK's in-memory exporter: one trace per
run holding the RPC, engine command and node spans, the caller's `traceparent` honoured over gRPC and
HTTP, and sent on by http nodes to the service they call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runctl.client import Client
from runctl.messages import start_execution_request
from runctl.v1 import common_pb2, execution_pb2
from runctl_server.observe import tracing
from tests.engine_helpers import LocalHttp, linear, local_http
from tests.support import ServerProcess, ServerThread, await_serving, free_port, running_server, settings_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_PARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def fetch_then_wait(url: str) -> dict[str, Any]:
    return linear(
        {"id": "fetch", "type": "http", "config": {"method": "GET", "url": f"{url}/orders/1"}},
        {"id": "confirm", "type": "wait"},
        name="fetch then wait",
    )


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider)
    try:
        yield memory
    finally:
        tracing.shutdown()


@pytest.fixture(scope="module")
def served(
    exporter: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    db = tmp_path_factory.mktemp("db") / "runctl.db"
    with running_server(settings_for(f"sqlite:///{db}")) as handle:
        yield handle


@pytest.fixture(scope="module")
def remote() -> Iterator[LocalHttp]:
    with local_http() as server:
        yield server


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def spans_of_run(exporter: InMemorySpanExporter, execution_id: str) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if (span.attributes or {}).get("runctl.execution.id") == execution_id
    ]


def test_one_trace_per_run_from_the_callers_traceparent(
    exporter: InMemorySpanExporter, served: ServerThread, remote: LocalHttp
) -> None:
    with Client(served.grpc_target) as client:
        request = start_execution_request(
            fetch_then_wait(remote.url),
            workflow_id=None,
            workflow_path=None,
            input=None,
            request_id=None,
            trace_logs=False,
            disable_breakpoints=False,
            workflow_version=0,
        )
        run = client.executions.StartExecution(request, metadata=(("traceparent", CALLER_PARENT),)).execution
        paused = client.wait(run.id, until=[PAUSED], timeout=30)
        # Resumed by a call of another trace: the command it causes still belongs to the run's trace.
        client.executions.ResumePausePoint(
            execution_pb2.ResumePausePointRequest(
                execution_id=run.id, context_id=paused.pause_points[0].context_id
            )
        )
        assert client.wait(run.id, timeout=30).status == COMPLETED

    finished = exporter.get_finished_spans()
    start_rpc = next(
        span
        for span in finished
        if span.name == "runctl.v1.ExecutionService/StartExecution" and trace_of(span) == CALLER_TRACE
    )
    assert start_rpc.parent is not None and format(start_rpc.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert start_rpc.attributes is not None and start_rpc.attributes["rpc.method"] == "StartExecution"

    run_spans = spans_of_run(exporter, run.id)
    names = {span.name for span in run_spans}
    assert {"runctl.node start", "runctl.node http", "runctl.node wait", "runctl.node end"} <= names
    assert "runctl.command resume_pause_point" in names
    assert {trace_of(span) for span in run_spans} == {CALLER_TRACE}

    resume_rpc = next(span for span in finished if span.name.endswith("/ResumePausePoint"))
    assert trace_of(resume_rpc) != CALLER_TRACE
    command = next(span for span in run_spans if span.name == "runctl.command resume_pause_point")
    assert [link.context.span_id for link in command.links] == [resume_rpc.context.span_id]

    # The service the http node called was handed the run's trace.
    called = next(r for r in remote.requests if r.path == "/orders/1")
    headers = {name.lower(): value for name, value in called.headers.items()}
    assert headers["traceparent"].split("-")[1] == CALLER_TRACE
    http_span = next(span for span in run_spans if span.name == "runctl.node http")
    assert headers["traceparent"].split("-")[2] == format(http_span.context.span_id, "016x")


def test_runs_without_a_caller_trace_get_one_each(
    exporter: InMemorySpanExporter, served: ServerThread, remote: LocalHttp
) -> None:
    hello = linear({"id": "greet", "type": "transform", "config": {"output": "hi"}}, name="hello")
    with Client(served.grpc_target) as client:
        runs = [client.start(hello) for _ in range(2)]
        for run in runs:
            client.wait(run.id, timeout=30)
    traces = []
    for run in runs:
        spans = spans_of_run(exporter, run.id)
        assert {"runctl.node start", "runctl.node transform", "runctl.node end"} <= {s.name for s in spans}
        ids = {trace_of(span) for span in spans}
        assert len(ids) == 1
        traces.append(ids.pop())
    assert traces[0] != traces[1]
    starts = [span for span in exporter.get_finished_spans() if span.name.endswith("/StartExecution")]
    assert set(traces) <= {trace_of(span) for span in starts}  # each run's trace is its start call's


def test_http_requests_honour_traceparent_and_spans_name_the_route(
    exporter: InMemorySpanExporter, served: ServerThread, remote: LocalHttp
) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    answer = httpx.post(
        f"{served.http_url}/api/workflows/execute",
        json={"workflow": fetch_then_wait(remote.url), "input": {}},
        headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"},
    )
    assert answer.status_code in (200, 201, 202), answer.text
    execution_id = answer.json()["executionId"]
    with Client(served.grpc_target) as client:
        client.wait(execution_id, until=[PAUSED], timeout=30)
        client.stop(execution_id)
    route = next(span for span in exporter.get_finished_spans() if span.name == "POST /api/workflows/execute")
    assert trace_of(route) == trace
    assert (
        route.attributes is not None and route.attributes["http.response.status_code"] == answer.status_code
    )
    assert {trace_of(span) for span in spans_of_run(exporter, execution_id)} == {trace}


WITHOUT_OTEL = """
import sys

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"{name} is not installed")

sys.meta_path.insert(0, NoOpenTelemetry())
from runctl.cli import app
sys.argv = ["runctl", "serve"]
app()
"""


def test_the_server_runs_without_opentelemetry_installed(tmp_path: Path) -> None:
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "RUNCTL_DB_URL": f"sqlite:///{tmp_path / 'runctl.db'}",
        "RUNCTL_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "RUNCTL_HTTP_ADDR": f"127.0.0.1:{http_port}",
        "RUNCTL_DRAIN_SECONDS": "0",
        "OTEL_TRACES_EXPORTER": "otlp",  # asks for traces: the server says it cannot and serves on
    }
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-c", WITHOUT_OTEL],
            env=env,
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    handle = ServerProcess(process, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", log_path)
    try:
        await_serving(handle)
        with Client(handle.grpc_target) as client:
            run = client.start(linear({"id": "greet", "type": "transform", "config": {"output": "hi"}}))
            assert client.wait(run.id, timeout=30).status == COMPLETED
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert "OpenTelemetry is not installed" in handle.log()
