"""The database goes away under a running server and comes back: gRPC health says NOT_SERVING and
readiness fails meanwhile, calls answer UNAVAILABLE (DATABASE_UNAVAILABLE) at once, and afterwards
health is SERVING again, nothing committed is lost and runs go on. A PostgreSQL cluster of the
test's own is stopped and started under the server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from runctl.client import Client
from runctl.errors import UnavailableError
from runctl.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from runctl_server.clock import ManualClock
from tests.engine_helpers import linear, node_reached
from tests.observability import Scrape
from tests.pg_cluster import OwnCluster, own_cluster
from tests.postgres import PostgresUnavailable
from tests.support import running_server, settings_for

pytestmark = pytest.mark.postgres

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WAITS = linear({"id": "confirm", "type": "wait"}, name="waits")
HELLO = linear({"id": "greet", "type": "transform", "config": {"output": "hi"}}, name="hello")


@pytest.fixture
def cluster() -> Iterator[OwnCluster]:
    try:
        with own_cluster() as made:
            yield made
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return int(
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        )


def _until_health(target: str, wanted: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _health(target) != wanted:
        assert time.monotonic() < deadline, f"health did not become {wanted}"
        time.sleep(0.1)


def _reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def test_health_readiness_and_calls_follow_the_database(cluster: OwnCluster) -> None:
    settings = settings_for(cluster.url("runctl"), lease_ttl_seconds=2.0)
    with running_server(settings) as handle, Client(handle.grpc_target) as client:
        waiting = client.start(WAITS)
        paused = client.wait(waiting.id, until=[PAUSED], timeout=30)
        assert _health(handle.grpc_target) == SERVING

        cluster.stop()
        _until_health(handle.grpc_target, NOT_SERVING)
        ready = httpx.get(f"{handle.http_url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")
        # Straight from the generated stub (the typed client retries UNAVAILABLE by itself).
        with grpc.insecure_channel(handle.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused:
            execution_pb2_grpc.ExecutionServiceStub(channel).GetExecution(
                execution_pb2.GetExecutionRequest(execution_id=waiting.id), timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cannot reach its database" in str(refused.value.details())
        assert _reason(refused.value) == "DATABASE_UNAVAILABLE"
        with pytest.raises(UnavailableError) as retried:
            client.get(waiting.id)
        assert retried.value.reason == "DATABASE_UNAVAILABLE"
        scrape = Scrape(handle.http_url)  # metrics go on answering, without what needs the database
        assert scrape.value("runctl_database_up") == 0
        assert "runctl_runs{" not in scrape.text
        over_http = httpx.get(f"{handle.http_url}/v1/executions/{waiting.id}", timeout=10)
        assert over_http.status_code == 503
        assert over_http.json()["details"] == [{"reason": "DATABASE_UNAVAILABLE"}]

        cluster.start()
        _until_health(handle.grpc_target, SERVING)
        assert httpx.get(f"{handle.http_url}/readyz", timeout=10).status_code == 200
        assert Scrape(handle.http_url).value("runctl_database_up") == 1
        # What was committed before is all there, and the run goes on from where it waited.
        again = client.get(waiting.id)
        assert again.status == PAUSED
        assert again.pause_points[0].context_id == paused.pause_points[0].context_id
        client.executions.ResumePausePoint(
            execution_pb2.ResumePausePointRequest(
                execution_id=waiting.id, context_id=paused.pause_points[0].context_id
            )
        )
        assert client.wait(waiting.id, timeout=30).status == COMPLETED
        # New work is taken and committed as before.
        fresh = client.start(HELLO)
        assert client.wait(fresh.id, timeout=30).status == COMPLETED


def test_a_timer_due_while_the_database_is_away_fires_once_it_is_back(cluster: OwnCluster) -> None:
    delayed = linear({"id": "pause", "type": "delay", "config": {"seconds": 60}}, name="delayed")
    settings = settings_for(cluster.url("runctl"))
    clock = ManualClock()
    with running_server(settings, clock=clock) as handle, Client(handle.grpc_target) as client:
        run = client.start(delayed)
        node_reached(client, run.id, "pause", status="waiting")  # its wake time is committed
        cluster.stop()
        _until_health(handle.grpc_target, NOT_SERVING)
        # The timer falls due while the database is away (the wake time came from the real clock a
        # moment after the manual one started: a few seconds more cover that moment).
        clock.advance(60 + 5)
        cluster.start()
        _until_health(handle.grpc_target, SERVING)
        done = client.wait(run.id, timeout=30)
        assert done.status == COMPLETED
        assert [node.status for node in done.nodes if node.node_id == "pause"] == [
            common_pb2.NODE_STATUS_COMPLETED
        ]
