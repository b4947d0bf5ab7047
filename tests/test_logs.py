"""Logs of a real `runctl serve`: in JSON format every line of the process is a JSON object (startup,
migrations, access lines, shutdown), access lines carry what an operator needs and never the key."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import grpc
import httpx
import pytest

from runctl.client import Client
from runctl.v1 import execution_pb2
from tests.engine_helpers import linear
from tests.support import create_api_key, spawn_server

HELLO = linear({"id": "greet", "type": "transform", "config": {"output": "hi {{ input.name }}"}}, name="hi")


def _lines(log: str) -> list[dict[str, object]]:
    lines = [line for line in log.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(value, dict)
        parsed.append(value)
    return parsed


def test_every_line_of_a_json_format_server_is_json(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'runctl.db'}"
    key = create_api_key(db_url, "acme")
    handle = spawn_server(db_url, tmp_path, {"RUNCTL_LOG_FORMAT": "json", "RUNCTL_LOG_LEVEL": "info"})
    try:
        with Client(handle.grpc_target, api_key=key) as client:
            run = client.start(HELLO, input={"name": "x"})
            client.wait(run.id, timeout=30)
            with pytest.raises(grpc.RpcError):
                client.executions.GetExecution(execution_pb2.GetExecutionRequest(execution_id="exec_missing"))
        with pytest.raises(grpc.RpcError), Client(handle.grpc_target, api_key="rk_wrong") as stranger:
            stranger.get(run.id)
        response = httpx.get(
            f"{handle.http_url}/v1/executions/{run.id}", headers={"x-api-key": key, "x-request-id": "req-42"}
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "req-42"
    finally:
        handle.process.send_signal(signal.SIGTERM)
        handle.process.wait(30)
    log = handle.log()
    assert key not in log
    lines = _lines(log)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    loggers = {line["logger"] for line in lines}
    assert "alembic.runtime.migration" in loggers  # migrations go through the same handler
    assert any("stopped" in str(line["message"]) for line in lines)

    access = [line for line in lines if line["logger"] == "runctl.access"]
    start = next(
        line for line in access if line.get("grpc_method") == "/runctl.v1.ExecutionService/StartExecution"
    )
    assert start["status"] == "OK"
    assert str(start["key_id"]).startswith("key_")
    assert start["workspace"]
    assert str(start["peer"]).startswith("ipv4:127.0.0.1:")
    assert isinstance(start["duration_ms"], float | int)
    assert start["request_id"]
    missing = next(line for line in access if line.get("execution_id") == "exec_missing")
    assert missing["status"] == "NOT_FOUND"
    refused = [line for line in access if line.get("status") == "UNAUTHENTICATED"]
    assert refused and all("key_id" not in line for line in refused)
    http = next(line for line in access if line.get("request_id") == "req-42")
    assert http["route"] == "/v1/executions/{id}"
    assert http["status"] == 200
    assert http["http_method"] == "GET"
    assert http["key_id"] == start["key_id"]


def test_a_start_failure_is_a_json_line_too(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "runctl.cli", "serve", "--log-format", "json", "--grpc-addr", "nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    lines = _lines(done.stdout + done.stderr)
    assert any("--grpc-addr" in str(line["message"]) and line["level"] == "ERROR" for line in lines)


def test_bad_log_settings_are_refused_clearly(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "runctl.cli", "serve", "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "is not text or json" in done.stderr
