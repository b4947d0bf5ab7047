"""Soak: a mixed load on one real server for a given time, then an audit of every run through the API.

Starts `runctl serve` as a subprocess (a temp SQLite file; `--postgres` for a throwaway PostgreSQL
database made as the tests make them) and, for `--minutes` (10 by default), keeps up at once:

- starts of five stored workflows at `--rate` runs/s: quick (three transforms), timer (a 1 s delay),
  wait (a wait node, resumed through ResumeNode with the workflow's webhook secret), approval (approved
  through ResumePausePoint) and long (a 60 s delay, stopped with StopExecution);
- a resumer and an approver answering every waiting pause point; a stopper stopping every long run;
- a batch of the quick and timer workflows every few seconds, every fourth one stopped at once;
- `--watchers` StreamEvents watchers that reconnect every few seconds from their cursor and check that
  what they receive is in order with no event twice, and WatchExecution watchers on recent runs.

Then the load stops, the remaining pause points are answered, and every run the load started (batch
runs included) is read back through GetExecution and GetExecutionHistory:

    started      runs the load started
    completed    runs that ended COMPLETED; stopped: ended STOPPED; failed: ended ERROR
    lost         started runs that never ended (or that the server does not know)
    duplicated   runs with more than one terminal event or a node completed twice
    memory       the server's resident set size at the start of the load, every minute, and at the end
    errors       every RPC error by code and method (INTERNAL and UNKNOWN are bugs)

It exits 1 when anything is lost or duplicated, when an INTERNAL or UNKNOWN was answered, or when a
watcher saw events out of order or twice. Run from the repository root:

    .venv/bin/python bench/soak.py                       # 10 minutes, SQLite
    .venv/bin/python bench/soak.py --minutes 1 --rate 10 --postgres
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))  # for tests.support, when run as `python bench/soak.py`

from runctl.v1 import (  # noqa: E402
    batch_pb2,
    batch_pb2_grpc,
    common_pb2,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    pause_point_pb2,
    pause_point_pb2_grpc,
    workflow_pb2,
    workflow_pb2_grpc,
)
from tests.postgres import temporary_database  # noqa: E402
from tests.support import ServerProcess, spawn_server  # noqa: E402

FINISHED = {
    common_pb2.EXECUTION_STATUS_COMPLETED: "completed",
    common_pb2.EXECUTION_STATUS_STOPPED: "stopped",
    common_pb2.EXECUTION_STATUS_ERROR: "failed",
}
TERMINAL_EVENTS = {
    event_pb2.EVENT_TYPE_EXECUTION_COMPLETED,
    event_pb2.EVENT_TYPE_EXECUTION_FAILED,
    event_pb2.EVENT_TYPE_EXECUTION_STOPPED,
}
BUGS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
CALL_TIMEOUT = 15.0


def linear(*middle: dict[str, Any], name: str) -> dict[str, Any]:
    nodes = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"name": name, "nodes": nodes, "edges": edges}


WORKFLOWS: dict[str, dict[str, Any]] = {
    "quick": linear(
        *({"id": f"t{i}", "type": "transform", "config": {"output": "{{ input.n }}"}} for i in range(3)),
        name="soak quick",
    ),
    "timer": linear({"id": "nap", "type": "delay", "config": {"seconds": 1}}, name="soak timer"),
    "wait": linear({"id": "hold", "type": "wait", "config": {"timeoutSeconds": 600}}, name="soak wait"),
    "approval": linear(
        {"id": "ask", "type": "approval", "config": {"title": "Ship it?", "timeoutSeconds": 600}},
        name="soak approval",
    ),
    "long": linear({"id": "nap", "type": "delay", "config": {"seconds": 60}}, name="soak long"),
}
# What each kind should end as, when nothing goes wrong.
EXPECTED = {"quick": "completed", "timer": "completed", "wait": "completed", "approval": "completed"}


@dataclass
class Tally:
    """Everything the load threads record, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: dict[str, str] = field(default_factory=dict)  # run id -> kind ("batch" for batch runs)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (code, method) -> count
    calls: Counter[str] = field(default_factory=Counter)
    watcher_events: int = 0
    watcher_reconnects: int = 0
    watcher_problems: list[str] = field(default_factory=list)
    executions_watched: int = 0

    def ran(self, method: str) -> None:
        with self.lock:
            self.calls[method] += 1

    def failed(self, method: str, error: grpc.RpcError) -> None:
        with self.lock:
            self.errors[(error.code().name, method)] += 1

    def started(self, run_id: str, kind: str) -> None:
        with self.lock:
            self.runs[run_id] = kind


@contextlib.contextmanager
def calling(tally: Tally, method: str) -> Iterator[None]:
    """Count a call and its error, if any; the load goes on either way."""
    tally.ran(method)
    try:
        yield
    except grpc.RpcError as error:
        tally.failed(method, error)


@dataclass
class Stubs:
    channel: grpc.Channel
    executions: execution_pb2_grpc.ExecutionServiceStub = field(init=False)
    workflows: workflow_pb2_grpc.WorkflowServiceStub = field(init=False)
    batches: batch_pb2_grpc.BatchServiceStub = field(init=False)
    events: event_pb2_grpc.EventServiceStub = field(init=False)
    points: pause_point_pb2_grpc.PausePointServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.executions = execution_pb2_grpc.ExecutionServiceStub(self.channel)
        self.workflows = workflow_pb2_grpc.WorkflowServiceStub(self.channel)
        self.batches = batch_pb2_grpc.BatchServiceStub(self.channel)
        self.events = event_pb2_grpc.EventServiceStub(self.channel)
        self.points = pause_point_pb2_grpc.PausePointServiceStub(self.channel)


@dataclass
class Soak:
    stubs: Stubs
    tally: Tally
    workflow_ids: dict[str, str]
    secrets: dict[str, str]
    rate: float
    stop: threading.Event = field(default_factory=threading.Event)
    load_over: threading.Event = field(default_factory=threading.Event)

    # -- starting --------------------------------------------------------------------------------

    def starter(self) -> None:
        kinds = list(WORKFLOWS)
        weights = [4, 2, 2, 2, 1]
        counter = itertools.count()
        next_at = time.monotonic()
        while not self.load_over.is_set():
            kind = random.choices(kinds, weights)[0]
            number = next(counter)
            request = execution_pb2.StartExecutionRequest(
                workflow_id=self.workflow_ids[kind],
                input=json_format.ParseDict({"n": number}, struct_pb2.Struct()),
                request_id=f"soak-{number}",
            )
            with calling(self.tally, "StartExecution"):
                reply = self.stubs.executions.StartExecution(request, timeout=CALL_TIMEOUT)
                self.tally.started(reply.execution.id, kind)
            next_at += 1 / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))

    def batcher(self) -> None:
        ids = [self.workflow_ids["quick"], self.workflow_ids["timer"]] * 3
        for round_number in itertools.count():
            if self.load_over.wait(5.0):
                return
            request = batch_pb2.StartBatchRequest(
                workflow_ids=batch_pb2.WorkflowIdList(ids=ids),
                concurrency=2,
                request_id=f"batch-{round_number}",
            )
            with calling(self.tally, "StartBatch"):
                batch = self.stubs.batches.StartBatch(request, timeout=CALL_TIMEOUT).batch
                for item in batch.executions:
                    self.tally.started(item.execution_id, "batch")
                if round_number % 4 == 3:
                    with calling(self.tally, "StopBatch"):
                        self.stubs.batches.StopBatch(
                            batch_pb2.StopBatchRequest(batch_id=batch.batch_id, reason="soak"),
                            timeout=CALL_TIMEOUT,
                        )

    # -- steering --------------------------------------------------------------------------------

    def resolver(self) -> None:
        """Answer every waiting pause point: wait nodes by ResumeNode (webhook secret), approvals by
        ResumePausePoint; runs at the end too, until `stop`."""
        waiting = [pause_point_pb2.RESUME_STATUS_PAUSED]
        while not self.stop.is_set():
            token = ""
            answered = 0
            with calling(self.tally, "ListPausePoints"):
                while True:
                    page = self.stubs.points.ListPausePoints(
                        pause_point_pb2.ListPausePointsRequest(
                            resume_statuses=waiting, page_size=200, page_token=token
                        ),
                        timeout=CALL_TIMEOUT,
                    )
                    for point in page.pause_points:
                        answered += self.answer(point)
                    token = page.next_page_token
                    if not token:
                        break
            if not answered:
                self.stop.wait(0.5)

    def answer(self, point: Any) -> int:
        kind = self.tally.runs.get(point.execution_id)
        if point.reason == common_pb2.PAUSE_REASON_WAIT and kind == "wait":
            with calling(self.tally, "ResumeNode"):
                self.stubs.executions.ResumeNode(
                    execution_pb2.ResumeNodeRequest(
                        execution_id=point.execution_id,
                        node_id=point.node_id,
                        secret=self.secrets["wait"],
                        data=json_format.ParseDict({"paid": True}, struct_pb2.Struct()),
                        request_id=f"resume-{point.context_id}",
                    ),
                    timeout=CALL_TIMEOUT,
                )
            return 1
        if point.reason == common_pb2.PAUSE_REASON_APPROVAL:
            with calling(self.tally, "ResumePausePoint"):
                self.stubs.executions.ResumePausePoint(
                    execution_pb2.ResumePausePointRequest(
                        context_id=point.context_id,
                        values=json_format.ParseDict({"approved": True}, struct_pb2.Struct()),
                        request_id=f"approve-{point.context_id}",
                        actor="soak",
                    ),
                    timeout=CALL_TIMEOUT,
                )
            return 1
        return 0

    def stopper(self) -> None:
        """Stop every long run a couple of seconds after it started."""
        stopped: set[str] = set()
        while not self.stop.is_set():
            with self.tally.lock:
                long_runs = [
                    run for run, kind in self.tally.runs.items() if kind == "long" and run not in stopped
                ]
            for run in long_runs:
                with calling(self.tally, "StopExecution"):
                    self.stubs.executions.StopExecution(
                        execution_pb2.StopExecutionRequest(execution_id=run, reason="soak"),
                        timeout=CALL_TIMEOUT,
                    )
                stopped.add(run)
            self.stop.wait(2.0)

    # -- watching --------------------------------------------------------------------------------

    def stream_watcher(self, number: int) -> None:
        """Follow every event, reconnecting every few seconds from the last sequence seen."""
        cursor: int | None = None
        seen = 0
        while not self.stop.is_set():
            request = event_pb2.StreamEventsRequest()
            if cursor is not None:
                request.after_sequence = cursor
            stream = self.stubs.events.StreamEvents(request)
            timer = threading.Timer(random.uniform(2.0, 6.0), stream.cancel)
            timer.start()
            self.tally.ran("StreamEvents")
            try:
                for reply in stream:
                    for event in reply.events.events:
                        if cursor is not None and event.sequence <= cursor:
                            with self.tally.lock:
                                self.tally.watcher_problems.append(
                                    f"watcher {number}: sequence {event.sequence} after {cursor}"
                                )
                        cursor = event.sequence
                        seen += 1
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    self.tally.failed("StreamEvents", error)
            finally:
                timer.cancel()
            with self.tally.lock:
                self.tally.watcher_reconnects += 1
        with self.tally.lock:
            self.tally.watcher_events += seen

    def execution_watcher(self) -> None:
        """Watch a recent run until it ends (or a few seconds pass), over and over."""
        while not self.stop.is_set():
            with self.tally.lock:
                recent = list(self.tally.runs)[-20:]
            if not recent:
                self.stop.wait(0.5)
                continue
            stream = self.stubs.executions.WatchExecution(
                execution_pb2.WatchExecutionRequest(execution_id=random.choice(recent)), timeout=5.0
            )
            self.tally.ran("WatchExecution")
            try:
                for _ in stream:
                    pass
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    self.tally.failed("WatchExecution", error)
            with self.tally.lock:
                self.tally.executions_watched += 1
            self.stop.wait(0.1)


# -- reading back ------------------------------------------------------------------------------------


@dataclass
class Audit:
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)  # "kind: outcome" off the expected one


def audit_runs(stubs: Stubs, runs: dict[str, str], tally: Tally) -> Audit:
    result = Audit()
    for run, kind in runs.items():
        try:
            execution = stubs.executions.GetExecution(
                execution_pb2.GetExecutionRequest(execution_id=run), timeout=CALL_TIMEOUT
            ).execution
        except grpc.RpcError as error:
            tally.failed("GetExecution (audit)", error)
            result.lost.append(f"{run}: {error.code().name}")
            continue
        outcome = FINISHED.get(execution.status)
        if outcome is None:
            result.lost.append(f"{run} ({kind}): still {common_pb2.ExecutionStatus.Name(execution.status)}")
            continue
        result.outcomes[outcome] += 1
        if kind in EXPECTED and outcome != EXPECTED[kind]:
            result.unexpected[f"{kind}: {outcome}"] += 1
        terminal = 0
        completions: Counter[str] = Counter()
        token = ""
        while True:
            page = stubs.executions.GetExecutionHistory(
                execution_pb2.GetExecutionHistoryRequest(execution_id=run, page_size=500, page_token=token),
                timeout=CALL_TIMEOUT,
            )
            for event in page.events:
                terminal += event.type in TERMINAL_EVENTS
                if event.type == event_pb2.EVENT_TYPE_NODE_COMPLETED:
                    completions[event.node_completed_attributes.node_key] += 1
            token = page.next_page_token
            if not token:
                break
        twice = {key: count for key, count in completions.items() if count > 1}
        if terminal != 1 or twice:
            result.duplicated.append(f"{run} ({kind}): {terminal} terminal events, nodes twice {twice}")
    return result


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def settle(stubs: Stubs, runs: dict[str, str], deadline: float) -> None:
    """Wait until every run has ended, or the deadline passes."""
    pending = set(runs)
    while pending and time.monotonic() < deadline:
        for run in list(pending):
            with contextlib.suppress(grpc.RpcError):
                execution = stubs.executions.GetExecution(
                    execution_pb2.GetExecutionRequest(execution_id=run), timeout=CALL_TIMEOUT
                ).execution
                if execution.status in FINISHED:
                    pending.discard(run)
        if pending:
            time.sleep(1.0)


# -- main --------------------------------------------------------------------------------------------


def create_workflows(stubs: Stubs) -> tuple[dict[str, str], dict[str, str]]:
    ids, secrets = {}, {}
    for kind, document in WORKFLOWS.items():
        definition = json_format.ParseDict(document, workflow_pb2.WorkflowDefinition())
        workflow = stubs.workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=definition), timeout=CALL_TIMEOUT
        ).workflow
        ids[kind], secrets[kind] = workflow.id, workflow.webhook_secret
    return ids, secrets


def soak(server: ServerProcess, minutes: float, rate: float, watchers: int) -> int:
    channel = grpc.insecure_channel(server.grpc_target)
    stubs = Stubs(channel)
    tally = Tally()
    ids, secrets = create_workflows(stubs)
    load = Soak(stubs, tally, ids, secrets, rate)
    pid = server.process.pid
    memory = [("start", rss_kib(pid))]
    threads = [
        threading.Thread(target=load.starter, name="starter"),
        threading.Thread(target=load.batcher, name="batcher"),
        threading.Thread(target=load.resolver, name="resolver"),
        threading.Thread(target=load.stopper, name="stopper"),
        *(
            threading.Thread(target=load.stream_watcher, args=(n,), name=f"watch-{n}")
            for n in range(watchers)
        ),
        *(threading.Thread(target=load.execution_watcher, name=f"exec-watch-{n}") for n in range(4)),
    ]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    end = began + minutes * 60
    while time.monotonic() < end:
        time.sleep(min(60.0, max(0.0, end - time.monotonic())))
        elapsed = time.monotonic() - began
        memory.append((f"{elapsed / 60:.1f} min", rss_kib(pid)))
        with tally.lock:
            started, errors = len(tally.runs), sum(tally.errors.values())
        print(
            f"  {elapsed / 60:5.1f} min: {started} runs started, {errors} errors,"
            f" rss {memory[-1][1] / 1024:.0f} MiB"
        )
    load.load_over.set()
    with tally.lock:
        runs = dict(tally.runs)
    settle(stubs, runs, time.monotonic() + 120)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    memory.append(("end", rss_kib(pid)))
    result = audit_runs(stubs, runs, tally)
    channel.close()
    return report(tally, result, memory, minutes, rate, watchers)


def report(
    tally: Tally, result: Audit, memory: list[tuple[str, int]], minutes: float, rate: float, watchers: int
) -> int:
    kinds = Counter(tally.runs.values())
    bugs = sum(count for (code, _), count in tally.errors.items() if code in {c.name for c in BUGS})
    print(f"\nsoak: {minutes:g} min, {rate:g} starts/s, {watchers} event watchers + 4 execution watchers")
    print(f"  started      {len(tally.runs)}  ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    print(f"  completed    {result.outcomes['completed']}")
    print(f"  stopped      {result.outcomes['stopped']}")
    print(f"  failed       {result.outcomes['failed']}")
    print(f"  lost         {len(result.lost)}")
    print(f"  duplicated   {len(result.duplicated)}")
    if result.unexpected:
        print(f"  off-plan     {dict(result.unexpected)}")
    print(
        f"  calls        {sum(tally.calls.values())}"
        f"  ({', '.join(f'{m} {n}' for m, n in tally.calls.most_common())})"
    )
    print(
        f"  watchers     {tally.watcher_events} events over {tally.watcher_reconnects} reconnects, "
        f"{len(tally.watcher_problems)} out of order or repeated; {tally.executions_watched} runs watched"
    )
    print("  memory (RSS) " + ", ".join(f"{label} {kib / 1024:.0f} MiB" for label, kib in memory))
    print("  errors by code:")
    by_code: dict[str, list[str]] = defaultdict(list)
    for (code, method), count in sorted(tally.errors.items()):
        by_code[code].append(f"{method} {count}")
    for code, methods in by_code.items():
        print(f"    {code:20} {', '.join(methods)}")
    if not by_code:
        print("    none")
    for line in (result.lost + result.duplicated + tally.watcher_problems)[:20]:
        print(f"  ! {line}")
    ok = not result.lost and not result.duplicated and not bugs and not tally.watcher_problems
    print("  result       " + ("OK: nothing lost or duplicated, no INTERNAL/UNKNOWN" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="workflow starts per second")
    parser.add_argument("--watchers", type=int, default=8, help="StreamEvents watchers")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runctl-soak-") as folder:
        workdir = Path(folder)
        with contextlib.ExitStack() as stack:
            db_url = (
                stack.enter_context(temporary_database())
                if args.postgres
                else f"sqlite:///{workdir / 'soak.db'}"
            )
            server = spawn_server(db_url, workdir, {"RUNCTL_DRAIN_SECONDS": "1"})
            try:
                print(f"soak: server pid {server.process.pid} on {db_url.split('@')[-1]}")
                return soak(server, args.minutes, args.rate, args.watchers)
            finally:
                server.process.terminate()
                try:
                    server.process.wait(timeout=30)
                except Exception:
                    server.process.kill()


if __name__ == "__main__":
    sys.exit(main())
