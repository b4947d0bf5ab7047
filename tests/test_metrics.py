"""Prometheus metrics of a real server: scraped over HTTP after real runs and calls, counters and
histograms move by what was done, and no label carries a run id or a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from runctl.client import Client
from runctl.v1 import common_pb2, event_pb2, execution_pb2
from tests.engine_helpers import linear
from tests.observability import Scrape
from tests.support import ServerThread, running_server, settings_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
ERROR = common_pb2.EXECUTION_STATUS_ERROR
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
TWO_TRANSFORMS = linear(
    {"id": "a", "type": "transform", "config": {"output": "{{ input.n }}"}},
    {"id": "b", "type": "transform", "config": {"output": "{{ nodes.a.output }}"}},
    name="two transforms",
)
FAILS = linear({"id": "boom", "type": "fail", "config": {"message": "on purpose"}}, name="fails")
WAITS = linear({"id": "confirm", "type": "wait"}, name="waits")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    db = tmp_path_factory.mktemp("db") / "runctl.db"
    with running_server(settings_for(f"sqlite:///{db}")) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(served: ServerThread) -> Iterator[Client]:
    with Client(served.grpc_target) as c:
        yield c


def test_run_and_node_metrics_count_what_ran(served: ServerThread, client: Client) -> None:
    workflow = client.create_workflow(TWO_TRANSFORMS)
    before = Scrape(served.http_url)

    done = [client.start(workflow_id=workflow.id, input={"n": n}) for n in range(3)]
    for run in done:
        assert client.wait(run.id, timeout=30).status == COMPLETED
    failed = client.start(FAILS)
    assert client.wait(failed.id, timeout=30).status == ERROR
    after = Scrape(served.http_url)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("runctl_runs_started_total", workflow=workflow.id) == 3
    assert moved("runctl_runs_ended_total", workflow=workflow.id, status="completed") == 3
    assert moved("runctl_runs_ended_total", workflow="inline", status="error") == 1
    assert moved("runctl_runs_ended_total", workflow=workflow.id, status="error") == 0
    # 2 transforms per run; start and end once each per run; the fail node failed once.
    assert moved("runctl_node_executions_total", node_type="transform", outcome="completed") == 6
    assert moved("runctl_node_executions_total", node_type="start", outcome="completed") == 4
    assert moved("runctl_node_executions_total", node_type="fail", outcome="failed") == 1
    assert moved("runctl_node_execution_seconds_count", node_type="transform") == 6
    assert moved("runctl_node_execution_seconds_sum", node_type="transform") > 0
    # Every +Inf bucket holds every observation: the histogram is whole.
    assert after.value("runctl_node_execution_seconds_bucket", node_type="transform", le="+Inf") == (
        after.value("runctl_node_execution_seconds_count", node_type="transform")
    )
    assert moved("runctl_commit_seconds_count") >= 4  # at least one commit per run
    assert moved("runctl_commits_total") == moved("runctl_commit_seconds_count")


def test_state_gauges_follow_waiting_runs(served: ServerThread, client: Client) -> None:
    before = Scrape(served.http_url)
    waiting = [client.start(WAITS) for _ in range(2)]
    for run in waiting:
        client.wait(run.id, until=[PAUSED], timeout=30)
    during = Scrape(served.http_url)
    assert during.value("runctl_runs", state="paused") - before.value("runctl_runs", state="paused") == 2
    for run in waiting:
        client.stop(run.id)
        client.wait(run.id, timeout=30)
    after = Scrape(served.http_url)
    assert after.value("runctl_runs", state="paused") == before.value("runctl_runs", state="paused")
    assert after.value("runctl_due_timers") == 0


def test_grpc_metrics_use_the_go_grpc_prometheus_names(served: ServerThread, client: Client) -> None:
    labels = {
        "grpc_service": "runctl.v1.ExecutionService",
        "grpc_method": "GetExecution",
        "grpc_type": "unary",
    }
    before = Scrape(served.http_url)
    run = client.start(TWO_TRANSFORMS)
    client.wait(run.id, timeout=30)
    with pytest.raises(grpc.RpcError) as missing:
        client.executions.GetExecution(execution_pb2.GetExecutionRequest(execution_id="exec_nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    after = Scrape(served.http_url)

    started = after.value("grpc_server_started_total", **labels) - before.value(
        "grpc_server_started_total", **labels
    )
    ok = after.value("grpc_server_handled_total", grpc_code="OK", **labels) - before.value(
        "grpc_server_handled_total", grpc_code="OK", **labels
    )
    not_found = after.value("grpc_server_handled_total", grpc_code="NOT_FOUND", **labels) - before.value(
        "grpc_server_handled_total", grpc_code="NOT_FOUND", **labels
    )
    assert not_found == 1
    assert ok >= 1  # wait() polls
    assert started == ok + not_found
    timed = after.value("grpc_server_handling_seconds_count", **labels) - before.value(
        "grpc_server_handling_seconds_count", **labels
    )
    assert timed == started


def test_http_metrics_are_by_route_template(served: ServerThread, client: Client) -> None:
    run = client.start(TWO_TRANSFORMS)
    client.wait(run.id, timeout=30)
    before = Scrape(served.http_url)
    assert httpx.get(f"{served.http_url}/v1/executions/{run.id}").status_code == 200
    assert httpx.get(f"{served.http_url}/v1/executions/exec_missing").status_code == 404
    after = Scrape(served.http_url)
    route = "/v1/executions/{id}"
    for status, count in (("200", 1), ("404", 1)):
        moved = after.value("runctl_http_requests_total", method="GET", route=route, status=status) - (
            before.value("runctl_http_requests_total", method="GET", route=route, status=status)
        )
        assert moved == count
    assert after.value("runctl_http_request_duration_seconds_count", method="GET", route=route) >= 2


def test_no_label_holds_a_run_id(served: ServerThread, client: Client) -> None:
    runs = [client.start(TWO_TRANSFORMS) for _ in range(2)]
    for run in runs:
        client.wait(run.id, timeout=30)
        httpx.get(f"{served.http_url}/v1/executions/{run.id}")
    values = Scrape(served.http_url).label_values()
    assert not [value for value in values if value.startswith(("exec_", "ctx_", "rk_", "key_"))]
    assert not any(run.id in value for run in runs for value in values)


def test_stream_subscribers_gauge_counts_open_watchers(served: ServerThread, client: Client) -> None:
    run = client.start(WAITS)
    client.wait(run.id, until=[PAUSED], timeout=30)
    stream = client.executions.WatchExecution(execution_pb2.WatchExecutionRequest(execution_id=run.id))
    first = next(stream)  # the snapshot: the watcher is subscribed
    assert first.HasField("snapshot")
    assert Scrape(served.http_url).value("runctl_stream_subscribers") >= 1
    stream.cancel()
    client.stop(run.id)


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    with running_server(settings_for(f"sqlite:///{tmp_path / 'off.db'}", metrics=False)) as handle:
        response = httpx.get(f"{handle.http_url}/metrics")
        assert response.status_code == 404
        assert "RUNCTL_METRICS" in response.json()["error"]


@pytest.mark.postgres
def test_replica_metrics_count_lease_claims(pg_url: str) -> None:
    with running_server(settings_for(pg_url)) as handle, Client(handle.grpc_target) as client:
        before = Scrape(handle.http_url)
        assert before.value("runctl_takeovers_total") == 0
        assert "runctl_leases_lost_total" in before.text
        run = client.start(WAITS)
        paused = client.wait(run.id, until=[PAUSED], timeout=30)
        # A waiting run is parked and held by nobody; the resume claims it again.
        client.executions.ResumePausePoint(
            execution_pb2.ResumePausePointRequest(
                execution_id=run.id, context_id=paused.pause_points[0].context_id
            )
        )
        assert client.wait(run.id, timeout=30).status == COMPLETED
        after = Scrape(handle.http_url)
        assert after.value("runctl_lease_claims_total") - before.value("runctl_lease_claims_total") >= 1
        assert after.value("runctl_commits_fenced_total") == 0


@pytest.mark.postgres
def test_a_lone_replica_never_reads_its_own_commits_back(pg_url: str) -> None:
    """Every commit's NOTIFY comes back to the process that made it, often before the commit's own
    answer: the relay must recognise its own events instead of reading them again from the log. A
    watcher is open throughout, so reading back would otherwise be wanted."""
    with running_server(settings_for(pg_url)) as handle, Client(handle.grpc_target) as client:
        stream = client.events.StreamEvents(event_pb2.StreamEventsRequest())
        runs = [client.start(TWO_TRANSFORMS)]
        next(stream)  # the first message answers once the watcher is subscribed
        runs += [client.start(TWO_TRANSFORMS) for _ in range(40)]
        for run in runs:
            assert client.wait(run.id, timeout=30).status == COMPLETED
        assert Scrape(handle.http_url).value("runctl_events_read_back_total") == 0
        stream.cancel()
