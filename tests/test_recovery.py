"""Crash recovery: SIGKILL the server mid-flight, restart it on the same database, and check that every
run carries on and finishes exactly once while every waiting run is still waiting.

At the kill there are durable timers pending (some still in the future after the restart, some overdue by
then), http nodes blocked in the middle of their request, loop iterations interrupted in their body, runs
parked at wait and approval pause points, and runs that had already completed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from runctl.messages import as_definition
from runctl.v1 import common_pb2, event_pb2, execution_pb2, pause_point_pb2
from tests.engine_helpers import Client, LocalHttp, linear, nodes_by_id, output
from tests.postgres import temporary_database
from tests.support import ServerProcess, spawn_server, wait_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
WAITING = common_pb2.NODE_STATUS_WAITING
NODE_COMPLETED = common_pb2.NODE_STATUS_COMPLETED

LONG_DELAY = 6.0  # still in the future when the second server is up: fires on its own schedule
SHORT_DELAY = 2.0  # overdue by the restart: fires at once
LOOP_DELAY = 1.5
LOOP_ITEMS = ["a", "b", "c", "d", "e"]
FINISH_TIMEOUT = 30.0
# How late after max(wake time, restart) a timer may fire: generous, the machine may be busy.
TIMER_SLACK = 5.0


class GatedHttp(LocalHttp):
    """LocalHttp whose /gate/... requests hang until `gate` is set: an http node is surely mid-request
    when the server is killed, and its repeat after the restart (gate open) answers at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.server.handle_error = self._handle_error  # type: ignore[method-assign]

    def _handle_error(self, request: Any, client_address: Any) -> None:
        """Answers to the killed process go to closed sockets: expected here, so not printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            ThreadingHTTPServer.handle_error(self.server, request, client_address)

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path.startswith("/gate/"):
            self.gate.wait(60)
            return 200, {"run": path.split("/")[2]}
        return super().route(method, path, body)


@contextmanager
def gated_http_server() -> Iterator[GatedHttp]:
    server = GatedHttp()
    server.thread.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    else:
        with temporary_database() as url:
            yield url


def stop(server: ServerProcess | None) -> None:
    """Terminate a server process, and kill it if it does not go."""
    if server is None or server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


def seconds(timestamp: Any) -> float:
    return float(timestamp.ToNanoseconds()) / 1e9


def event_type(event: Any) -> str:
    return str(event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_"))


def node_key(event: Any) -> str:
    which = event.WhichOneof("attributes")
    key = getattr(getattr(event, which), "node_key", None) if which else None
    return str(key if key is not None else event.node_id)


def history_summary(events: list[Any]) -> list[tuple[int, str, str]]:
    return [(event.sequence, event_type(event), node_key(event)) for event in events]


@dataclass
class Runs:
    """Execution ids of each kind of run in the mix."""

    quick: dict[str, int]
    waits: list[str]
    approvals: list[str]
    long_timers: dict[str, int]
    short_timers: dict[str, int]
    http: dict[str, int]
    loops: list[str]

    @property
    def waiting(self) -> list[str]:
        return self.waits + self.approvals

    @property
    def moving(self) -> list[str]:
        """The runs in flight at the kill, that must finish after the restart."""
        return [*self.long_timers, *self.short_timers, *self.http, *self.loops]


def timer_doc(delay: float) -> dict[str, Any]:
    doc = linear(
        {"id": "pause", "type": "delay", "config": {"seconds": delay}},
        {"id": "calc", "type": "transform", "config": {"output": "timer {{ input.i }}"}},
        name="timer",
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.calc.output }}"}
    return doc


def http_doc(url: str) -> dict[str, Any]:
    doc = linear(
        {"id": "call", "type": "http", "config": {"url": url + "/gate/{{ input.i }}"}},
        name="http",
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.call.output.body }}"}
    return doc


def loop_doc() -> dict[str, Any]:
    doc = linear(
        {
            "id": "loop",
            "type": "for_each",
            "config": {"items": "input.items", "concurrency": 2},
            "body": {
                "nodes": [
                    {"id": "pause", "type": "delay", "config": {"seconds": LOOP_DELAY}},
                    {"id": "mark", "type": "transform", "config": {"output": "{{ item }}-{{ index }}"}},
                ],
                "edges": [{"from": "pause", "to": "mark"}],
            },
        },
        name="loop",
    )
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.loop.output }}"}
    return doc


QUICK = linear({"id": "calc", "type": "transform", "config": {"output": "quick {{ input.i }}"}}, name="quick")
QUICK["nodes"][-1]["config"] = {"output": "{{ nodes.calc.output }}"}
WAIT = linear(
    {"id": "hold", "type": "wait", "config": {"display": {"title": "hold {{ input.i }}"}}}, name="wait"
)
APPROVAL = linear(
    {
        "id": "approve",
        "type": "approval",
        "config": {
            "title": "Approve {{ input.i }}",
            "message": "Please review",
            "formFields": [{"name": "approved", "type": "boolean", "required": True}],
        },
    },
    name="approval",
)


def not_in_flight(client: Client, runs: Runs, http: GatedHttp) -> str:
    """What is not yet where the kill should find it; empty once every moving run is in flight."""
    arrived = {r.headers.get("Idempotency-Key") for r in list(http.requests) if r.path.startswith("/gate/")}
    missing = {f"{run_id}/call" for run_id in runs.http} - arrived
    if missing:
        return f"{len(missing)} http requests have not arrived"
    for run_id in [*runs.long_timers, *runs.short_timers]:
        pause = nodes_by_id(client.get(run_id)).get("pause")
        if pause is None or pause.status != WAITING:
            return f"timer run {run_id} has no waiting delay: {pause}"
    for run_id in runs.loops:
        body = [n for n in client.get(run_id).nodes if n.stack and n.node_id == "pause"]
        if not any(n.status == WAITING for n in body):
            return f"loop run {run_id} has no iteration waiting in its delay"
    return ""


def start_settled(client: Client, http: GatedHttp) -> Runs:
    """Start the runs that keep still until the kill: answers once quick runs completed and waiting runs
    paused (their http requests hang until the gate opens)."""
    quick = {client.start(QUICK, input={"i": i}).id: i for i in range(10)}
    waits = [client.start(WAIT, input={"i": i}).id for i in range(10)]
    approvals = [client.start(APPROVAL, input={"i": i}).id for i in range(10)]
    gated = http_doc(http.url)
    runs = Runs(
        quick, waits, approvals, {}, {}, {client.start(gated, input={"i": i}).id: i for i in range(12)}, []
    )
    for run_id in quick:
        assert client.wait(run_id).status == COMPLETED
    for run_id in waits + approvals:
        client.wait(run_id, until=(PAUSED,))
    return runs


def start_timed(client: Client, runs: Runs, http: GatedHttp) -> None:
    """Start the time-bound runs, last, and answer once every run is where the kill should find it:
    http requests hanging, timers pending, loops mid-iteration."""
    long_doc, short_doc = timer_doc(LONG_DELAY), timer_doc(SHORT_DELAY)
    runs.long_timers = {client.start(long_doc, input={"i": i}).id: i for i in range(12)}
    runs.loops = [client.start(loop_doc(), input={"items": LOOP_ITEMS}).id for _ in range(2)]
    runs.short_timers = {client.start(short_doc, input={"i": i}).id: i for i in range(4)}
    problem = "not checked yet"

    def ready() -> bool:
        nonlocal problem
        problem = not_in_flight(client, runs, http)
        return not problem

    try:
        wait_for(ready, timeout=20, what="every moving run to be in flight")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {problem}") from None


def assert_finished_once(client: Client, run_id: str) -> list[Any]:
    """The run's history holds one EXECUTION_COMPLETED, one NODE_COMPLETED per node key, no failure,
    and strictly increasing sequences; answers the history."""
    events = list(client.history(run_id))
    types = [event_type(e) for e in events]
    assert types.count("EXECUTION_STARTED") == 1, (run_id, history_summary(events))
    assert types.count("EXECUTION_COMPLETED") == 1, (run_id, history_summary(events))
    assert types[-1] == "EXECUTION_COMPLETED", (run_id, history_summary(events))
    assert not {"EXECUTION_FAILED", "EXECUTION_STOPPED", "NODE_FAILED"} & set(types), history_summary(events)
    completions = Counter(
        node_key(e) for e, kind in zip(events, types, strict=True) if kind == "NODE_COMPLETED"
    )
    assert completions and max(completions.values()) == 1, (run_id, completions)
    execution = client.get(run_id)
    node_keys = {node_key_of(n) for n in execution.nodes if n.status == NODE_COMPLETED}
    assert set(completions) == node_keys, (run_id, sorted(completions), sorted(node_keys))
    sequences = [e.sequence for e in events]
    assert all(a < b for a, b in pairwise(sequences)), (run_id, sequences)
    assert execution.last_sequence == sequences[-1]
    return events


def node_key_of(node: execution_pb2.NodeState) -> str:
    return "".join(f"{frame.parent_node_id}[{frame.index}]." for frame in node.stack) + node.node_id


@dataclass
class Recovered:
    """The mix after the kill and the restart: every moving run has completed on the second server."""

    client: Client
    runs: Runs
    http: GatedHttp
    # Waiting runs and the histories of waiting and quick runs, as the first server left them.
    before_waiting: dict[str, execution_pb2.Execution]
    before_history: dict[str, list[tuple[int, str, str]]]
    killed_at: float
    restarted_at: float
    # The history of every moving and quick run, read from the second server.
    histories: dict[str, list[Any]]


@pytest.fixture(scope="module")
def recovered(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recovered]:
    """SIGKILL a server with the mix in flight, restart it on the same database and wait until every
    moving run completed: once per database, then each test below checks one promise."""
    with gated_http_server() as gated_http:
        workdir = tmp_path_factory.mktemp("recovery")
        first: ServerProcess | None = None
        second: ServerProcess | None = None
        try:
            # -- 1. the mix, in flight ------------------------------------------------------------------
            first = spawn_server(db_url, workdir)
            with Client(first.grpc_target) as client:
                runs = start_settled(client, gated_http)
                before_waiting = {run_id: client.get(run_id) for run_id in runs.waiting}
                before_history = {
                    run_id: history_summary(list(client.history(run_id)))
                    for run_id in [*runs.quick, *runs.waiting]
                }
                start_timed(client, runs, gated_http)
                short_wakes = [
                    seconds(nodes_by_id(client.get(run_id))["pause"].start_time) + SHORT_DELAY
                    for run_id in runs.short_timers
                ]

            # -- 2. kill -9 ----------------------------------------------------------------------------
            first.process.send_signal(signal.SIGKILL)
            assert first.process.wait(timeout=10) == -signal.SIGKILL
            killed_at = time.time()
            gated_http.gate.set()  # the hung requests of the dead process answer into closed sockets
            # Restart only once the short timers are overdue, so that they must fire late, at once.
            wait_for(
                lambda: time.time() > max(short_wakes) + 0.2,
                timeout=10,
                what="the short timers to be overdue",
            )

            # -- 3. restart on the same database ---------------------------------------------------------
            second = spawn_server(db_url, workdir)
            restarted_at = time.time()
            with Client(second.grpc_target) as client:
                pending = set(runs.moving)

                def all_finished() -> bool:
                    for run_id in list(pending):
                        status = client.get(run_id).status
                        assert status in (COMPLETED, common_pb2.EXECUTION_STATUS_RUNNING, PAUSED), (
                            run_id,
                            common_pb2.ExecutionStatus.Name(status),
                        )
                        if status == COMPLETED:
                            pending.discard(run_id)
                    return not pending

                try:
                    wait_for(all_finished, timeout=FINISH_TIMEOUT, what="every in-flight run to complete")
                except AssertionError:
                    stuck = {
                        run_id: json_format.MessageToDict(client.get(run_id))
                        for run_id in sorted(pending)[:3]
                    }
                    raise AssertionError(
                        f"{len(pending)} runs did not finish: {stuck}\nlog:\n{second.log()}"
                    ) from None
                histories = {run_id: list(client.history(run_id)) for run_id in [*runs.moving, *runs.quick]}
                yield Recovered(
                    client,
                    runs,
                    gated_http,
                    before_waiting,
                    before_history,
                    killed_at,
                    restarted_at,
                    histories,
                )
        finally:
            if first is not None and first.process.poll() is None:
                first.process.kill()
                first.process.wait(timeout=10)
            stop(second)


def test_every_run_in_flight_or_done_at_the_kill_finishes_exactly_once(recovered: Recovered) -> None:
    for run_id in [*recovered.runs.moving, *recovered.runs.quick]:
        assert_finished_once(recovered.client, run_id)


def test_runs_done_before_the_kill_keep_their_output_and_history(recovered: Recovered) -> None:
    for run_id, i in recovered.runs.quick.items():
        assert output(recovered.client.get(run_id).output) == f"quick {i}"
        assert history_summary(recovered.histories[run_id]) == recovered.before_history[run_id]


def test_timers_never_fire_early_and_overdue_ones_fire_at_once_after_the_restart(
    recovered: Recovered,
) -> None:
    runs, client = recovered.runs, recovered.client
    for run_id, i in {**runs.long_timers, **runs.short_timers}.items():
        execution = client.get(run_id)
        assert output(execution.output) == f"timer {i}"
        pause = nodes_by_id(execution)["pause"]
        delay = LONG_DELAY if run_id in runs.long_timers else SHORT_DELAY
        wake = seconds(pause.start_time) + delay
        fired = seconds(pause.end_time)
        # Pending at the kill; never early; on time, or at once after the restart if overdue.
        assert seconds(pause.start_time) < recovered.killed_at < fired, (
            run_id,
            history_summary(recovered.histories[run_id]),
        )
        assert fired >= wake, (run_id, fired - wake)
        assert fired <= max(wake, recovered.restarted_at) + TIMER_SLACK, (
            run_id,
            fired - max(wake, recovered.restarted_at),
        )
        assert pause.attempts == 1
    for run_id in runs.short_timers:
        started = seconds(nodes_by_id(client.get(run_id))["pause"].start_time)
        assert started + SHORT_DELAY < recovered.restarted_at


def test_interrupted_http_calls_are_sent_again_with_the_same_idempotency_key(recovered: Recovered) -> None:
    for run_id, i in recovered.runs.http.items():
        execution = recovered.client.get(run_id)
        assert output(execution.output) == {"run": str(i)}
        requests = [r for r in recovered.http.requests if r.path == f"/gate/{i}"]
        keys = {r.headers.get("Idempotency-Key") for r in requests}
        # At-least-once: the interrupted request was sent again, with the same key.
        assert len(requests) >= 2, (run_id, len(requests))
        assert keys == {f"{run_id}/call"}, (run_id, keys)
        call = nodes_by_id(execution)["call"]
        assert call.attempts == 1  # a crash re-run is the same attempt, not a retry
        starts = [
            e for e in recovered.histories[run_id] if event_type(e) == "NODE_STARTED" and e.node_id == "call"
        ]
        assert len(starts) == len(requests)


def test_loop_iterations_keep_their_order_delay_and_concurrency_across_the_crash(
    recovered: Recovered,
) -> None:
    for run_id in recovered.runs.loops:
        execution = recovered.client.get(run_id)
        assert output(execution.output) == [f"{item}-{index}" for index, item in enumerate(LOOP_ITEMS)]
        marks = {n.stack[0].index: n for n in execution.nodes if n.node_id == "mark"}
        pauses = {n.stack[0].index: n for n in execution.nodes if n.node_id == "pause"}
        assert sorted(marks) == sorted(pauses) == list(range(len(LOOP_ITEMS)))
        spans = [(seconds(pauses[i].start_time), seconds(marks[i].end_time)) for i in pauses]
        for start, _ in spans:
            # Never more than `concurrency` iterations at once, across the crash too.
            assert sum(1 for a, b in spans if a <= start < b) <= 2, spans
        for index, node in pauses.items():
            assert seconds(node.end_time) >= seconds(node.start_time) + LOOP_DELAY, index
        assert any(seconds(n.start_time) < recovered.killed_at < seconds(n.end_time) for n in pauses.values())


def test_both_processes_wrote_one_global_sequence_without_gaps(recovered: Recovered) -> None:
    # Every event of every run has its own number, and as nothing but these runs wrote events,
    # together they leave no gap.
    histories = recovered.histories
    everything = [e.sequence for run_id in histories for e in histories[run_id]]
    everything += [s for run_id in recovered.runs.waiting for s, _, _ in recovered.before_history[run_id]]
    assert len(everything) == len(set(everything))
    assert sorted(everything) == list(range(1, len(everything) + 1))


def test_waiting_runs_are_still_waiting_at_the_same_pause_point(recovered: Recovered) -> None:
    client = recovered.client
    for run_id in recovered.runs.waiting:
        execution = client.get(run_id)
        before = recovered.before_waiting[run_id]
        assert execution.status == PAUSED, run_id
        assert execution.paused_node_id == before.paused_node_id
        assert execution.pause_reason == before.pause_reason
        (point,) = execution.pause_points
        (old_point,) = before.pause_points
        assert point.context_id == old_point.context_id
        assert point.resume_status == pause_point_pb2.RESUME_STATUS_PAUSED
        node = nodes_by_id(execution)[point.node_id]
        assert node.status == WAITING and node.context_id == point.context_id
        assert history_summary(list(client.history(run_id))) == recovered.before_history[run_id]


def test_a_parent_whose_child_was_lost_starts_it_again(tmp_path: Path) -> None:
    """The crash window between a parent committing 'waiting on a child' and the child's creation."""
    import sqlite3

    db = tmp_path / "runctl.db"
    first = spawn_server(f"sqlite:///{db}", tmp_path)
    try:
        with Client(first.grpc_target) as client:
            child_doc = linear({"id": "nap", "type": "delay", "config": {"seconds": 1}}, name="child")
            from runctl.v1 import workflow_pb2

            child = client.workflows.CreateWorkflow(
                workflow_pb2.CreateWorkflowRequest(definition=as_definition(child_doc)), timeout=10
            ).workflow
            parent_id = client.start(
                linear(
                    {"id": "sub", "type": "subworkflow", "config": {"workflowId": child.id}}, name="parent"
                )
            ).id
            deadline = time.monotonic() + 10
            while (
                len(
                    client.executions.ListExecutions(
                        execution_pb2.ListExecutionsRequest(workflow_id=child.id), timeout=10
                    ).executions
                )
                < 1
            ):
                assert time.monotonic() < deadline, "the child never started"
                time.sleep(0.05)
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(20)
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM executions WHERE workflow_id = ?", (child.id,))
    second = spawn_server(f"sqlite:///{db}", tmp_path)
    try:
        with Client(second.grpc_target) as client:
            parent = client.wait(parent_id, timeout=20)
            assert parent.status == common_pb2.EXECUTION_STATUS_COMPLETED
            sub = output(nodes_by_id(parent)["sub"].output)
            assert client.get(sub["executionId"]).workflow_id == child.id
    finally:
        second.process.terminate()
        second.process.wait(20)
