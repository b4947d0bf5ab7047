"""SIGTERM drains the server as load balancers and watchers need: NOT_SERVING first while calls are still
served, then open streams end at once with where to resume, then the process exits without waiting out
the grace period."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from runctl.client import Client
from runctl.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from tests.support import spawn_server

DRAIN_SECONDS = 2.0
GRACE_SECONDS = 20.0
HOLD = {
    "name": "held",
    "nodes": [{"id": "start", "type": "start"}, {"id": "hold", "type": "wait"}, {"id": "end", "type": "end"}],
    "edges": [{"from": "start", "to": "hold"}, {"from": "hold", "to": "end"}],
}


def error_reason(error: grpc.RpcError) -> tuple[str, dict[str, str]]:
    """The ErrorInfo reason and metadata of a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None, error
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason, dict(info.metadata)
    raise AssertionError(f"no ErrorInfo in {status}")


def test_sigterm_drains_then_ends_streams_and_exits_early(tmp_path: Path) -> None:
    proc = spawn_server(
        f"sqlite:///{tmp_path / 'runctl.db'}",
        tmp_path,
        {"RUNCTL_DRAIN_SECONDS": f"{DRAIN_SECONDS:g}", "RUNCTL_SHUTDOWN_GRACE_SECONDS": f"{GRACE_SECONDS:g}"},
    )
    try:
        client = Client(proc.grpc_target)
        run = client.start(HOLD)
        client.wait(run.id, until=[common_pb2.EXECUTION_STATUS_PAUSED], timeout=20)
        with grpc.insecure_channel(proc.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
            assert next(health).status == health_pb2.HealthCheckResponse.SERVING
            # A watcher of the paused run: its stream would stay open for as long as the run waits.
            watch = execution_pb2_grpc.ExecutionServiceStub(channel).WatchExecution(
                execution_pb2.WatchExecutionRequest(execution_id=run.id), timeout=60
            )
            snapshot = next(watch)
            assert snapshot.WhichOneof("kind") == "snapshot"
            ended: dict[str, Any] = {}

            def follow() -> None:
                try:
                    for message in watch:
                        ended.setdefault("messages", []).append(message)
                except grpc.RpcError as error:
                    ended["error"] = error
                ended["at"] = time.monotonic()

            follower = threading.Thread(target=follow, daemon=True)
            follower.start()
            sse: dict[str, Any] = {"text": ""}

            def follow_sse() -> None:
                url = f"{proc.http_url}/api/workflows/execution/{run.id}/events"
                with httpx.stream("GET", url, timeout=60) as answer:
                    for chunk in answer.iter_text():
                        sse["text"] += chunk
                sse["at"] = time.monotonic()

            sse_follower = threading.Thread(target=follow_sse, daemon=True)
            sse_follower.start()
            time.sleep(0.5)  # both streams open

            signalled = time.monotonic()
            proc.process.send_signal(signal.SIGTERM)
            assert next(health).status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert time.monotonic() - signalled < 1.0
            # During the drain period the server says NOT_SERVING on both faces but still serves calls.
            assert httpx.get(f"{proc.http_url}/healthz", timeout=5).status_code == 503
            assert client.get(run.id).status == common_pb2.EXECUTION_STATUS_PAUSED
            assert "error" not in ended, "the stream ended before the drain period was over"

            follower.join(DRAIN_SECONDS + 5)
            assert "error" in ended, "the watch stream was still open after the drain period"
            error = ended["error"]
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            reason, metadata = error_reason(error)
            assert reason == "SHUTTING_DOWN"
            assert int(metadata["cursor"]) >= snapshot.cursor
            assert DRAIN_SECONDS - 0.5 <= ended["at"] - signalled <= DRAIN_SECONDS + 3
            # The SSE watcher of the same run is told too, and its response ends.
            sse_follower.join(5)
            assert "at" in sse, f"the SSE stream was still open: {sse['text']!r}"
            assert "event: error" in sse["text"] and "shutting down" in sse["text"], sse["text"]
            assert sse["at"] - signalled <= DRAIN_SECONDS + 3
        assert proc.process.wait(timeout=GRACE_SECONDS) == 0
        # Nothing was in flight: the process did not wait out the grace period.
        assert time.monotonic() - signalled < DRAIN_SECONDS + 5
        client.close()
    finally:
        if proc.process.poll() is None:
            proc.process.kill()


def test_a_second_signal_cuts_the_drain_short(tmp_path: Path) -> None:
    proc = spawn_server(f"sqlite:///{tmp_path / 'runctl.db'}", tmp_path, {"RUNCTL_DRAIN_SECONDS": "60"})
    try:
        with grpc.insecure_channel(proc.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
            assert next(health).status == health_pb2.HealthCheckResponse.SERVING
            signalled = time.monotonic()
            proc.process.send_signal(signal.SIGTERM)
            assert next(health).status == health_pb2.HealthCheckResponse.NOT_SERVING
        proc.process.send_signal(signal.SIGINT)
        assert proc.process.wait(timeout=20) == 0
        assert time.monotonic() - signalled < 10
    finally:
        if proc.process.poll() is None:
            proc.process.kill()
