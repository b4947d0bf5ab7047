"""Replicas: several `runctl serve` processes on one PostgreSQL database, each run driven exactly once.

The processes are real subprocesses (tests/replicas.py). The big test starts runs of every kind through
all three replicas while one is SIGKILLed and restarted three times and another is SIGSTOPped for longer
than the lease TTL, and checks from the event log, the API and the database that every run ended once,
no node completed twice, every http node used one idempotency key, and watchers on other replicas saw
the whole log. The smaller tests share one cluster: control calls, resumes and workflow holds sent to a
replica other than the one driving the run, cluster-wide batch limits, a SIGTERM handover; and, with a
database of its own, API key creation and revocation. (Replicas starting together on an empty database
and a second process on one SQLite file have tests of their own: test_migration_lock.py and
test_process_lock.py.)

Who drives a run: the replica that received its start, unless the database names a lease owner
(`Cluster.driver_of`), in which case calls go to replicas other than that owner.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import json_format

from runctl.client import Client
from runctl.v1 import (
    batch_pb2,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    execution_pb2,
    pause_point_pb2,
    workflow_pb2,
)
from runctl_server.store.api_keys import create_key, revoke_key
from runctl_server.store.database import create_db_engine
from tests.replicas import (
    Cluster,
    EventWatcher,
    HttpCall,
    RecordingHttpServer,
    RunAudit,
    audit,
    delay,
    event_sequences,
    http_node,
    linear,
    log,
    running_cluster,
)

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
QUEUED = common_pb2.EXECUTION_STATUS_QUEUED
RUNNING = common_pb2.EXECUTION_STATUS_RUNNING
STOPPED = common_pb2.EXECUTION_STATUS_STOPPED
FINISHED = (COMPLETED, common_pb2.EXECUTION_STATUS_ERROR, STOPPED)
RESUMED = execution_pb2.RESUME_ACTION_RESUMED
SKIPPED = execution_pb2.RESUME_ACTION_SKIPPED
TERMINAL = ("EXECUTION_COMPLETED", "EXECUTION_FAILED", "EXECUTION_STOPPED")
# Calls that may fail because the replica went away while they were in flight: tried elsewhere.
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

TTL = 2.0  # the chaos test's lease TTL: dead and stalled replicas lose their runs after 2 s
SHARED_TTL = 10.0  # the shared cluster's (the default): a SIGTERM handover must take far less
# "Within a second" (workflow pause, key revocation), plus scheduling slack on a busy 2-core machine.
PROPAGATION = 1.0
SLACK = 0.5
SETTLE = 2 * TTL + 1.0  # after the last run ended: time for late commits (the slow requests take 3 s)
# After a SIGTERMed replica exits, its runs (1.5 s of request, 0.5 s of delay left) must end before a
# lease left to expire could have been taken (renewed every TTL/4, so expiring 7.5-10 s after the exit).
HANDOVER = 7.0


# -- helpers --------------------------------------------------------------------------------------------


def kind(event: event_pb2.Event) -> str:
    return str(event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_"))


def node_key(event: event_pb2.Event) -> str:
    which = event.WhichOneof("attributes")
    key = getattr(getattr(event, which), "node_key", None) if which else None
    return str(key if key is not None else event.node_id)


def seconds(timestamp: Any) -> float:
    return float(timestamp.ToNanoseconds()) / 1e9


APPROVAL = {
    "id": "approve",
    "type": "approval",
    "config": {
        "title": "Approve {{ input.tag }}",
        "formFields": [{"name": "approved", "type": "boolean", "required": True}],
    },
}


def explain(cluster: Cluster, message: str) -> str:
    """A failure message followed by what every replica logged."""
    return f"{message}\n\ncluster: {cluster.describe()}\n{cluster.logs()}"


def poll(cluster: Cluster, condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(explain(cluster, f"timed out after {timeout:g} s waiting until {what}"))
        time.sleep(0.05)


def history(client: Client, run: str) -> list[event_pb2.Event]:
    return list(client.history(run))


def history_problems(run: str, events: Sequence[event_pb2.Event]) -> list[str]:
    """Why a run's history is not 'one start, one terminal event last, each node completed once'."""
    types = [kind(e) for e in events]
    problems = []
    terminal = [t for t in types if t in TERMINAL]
    if len(terminal) != 1:
        problems.append(f"{run}: {len(terminal)} terminal events {terminal}")
    elif types[-1] not in TERMINAL:
        problems.append(f"{run}: events after its terminal event: {types[types.index(terminal[0]) :]}")
    if types.count("EXECUTION_STARTED") > 1:
        problems.append(f"{run}: {types.count('EXECUTION_STARTED')} EXECUTION_STARTED events")
    completions = Counter(node_key(e) for e in events if kind(e) == "NODE_COMPLETED")
    twice = {key: n for key, n in completions.items() if n > 1}
    if twice:
        problems.append(f"{run}: nodes completed more than once {twice}")
    sequences = [e.sequence for e in events]
    if any(a >= b for a, b in pairwise(sequences)):
        problems.append(f"{run}: sequences not increasing {sequences}")
    return problems


def assert_once(cluster: Cluster, runs: Sequence[str], via: int | None = None) -> dict[str, list[Any]]:
    """Every run's history (read through a live replica) is 'exactly once'; answers the histories."""
    client = cluster.client(cluster.other_live() if via is None else via)
    histories = {run: history(client, run) for run in runs}
    problems = [p for run, events in histories.items() for p in history_problems(run, events)]
    assert not problems, explain(cluster, "runs not driven exactly once:\n" + "\n".join(problems))
    return histories


def others(cluster: Cluster, starter: int, run: str | None = None) -> tuple[int, int]:
    """Two live replicas other than the one that started the run, one that does not drive it first
    when the database names its driver."""
    driver = cluster.driver_of(run) if run is not None else None
    candidates = sorted((i for i in cluster.live() if i != starter), key=lambda i: i == driver)
    assert candidates, explain(cluster, f"no live replica besides {starter}")
    return candidates[0], candidates[-1]


def lease_owners(cluster: Cluster, execution_ids: Sequence[str]) -> dict[str, str]:
    """The replica id in each run's lease (runs held by nobody are left out)."""
    with psycopg.connect(cluster.db_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id, lease_owner FROM executions WHERE id = ANY(%s) AND lease_owner IS NOT NULL",
            (list(execution_ids),),
        ).fetchall()
    return {str(run): str(owner) for run, owner in rows}


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def create(client: Client, document: Mapping[str, Any]) -> workflow_pb2.Workflow:
    return client.create_workflow(dict(document))


def node_states(execution: execution_pb2.Execution) -> dict[str, str]:
    return {
        node.node_id: common_pb2.NodeStatus.Name(node.status).removeprefix("NODE_STATUS_").lower()
        for node in execution.nodes
        if not node.stack
    }


def full_log(client: Client) -> list[event_pb2.Event]:
    """The whole event log, through ListEvents pages."""
    events: list[event_pb2.Event] = []
    token = ""
    while True:
        reply = client.events.ListEvents(
            event_pb2.ListEventsRequest(page_size=1000, page_token=token), timeout=30
        )
        events.extend(reply.events)
        token = reply.next_page_token
        if not token:
            return events


def watch_problems(
    name: str, received: Sequence[event_pb2.Event], log: Sequence[event_pb2.Event]
) -> list[str]:
    """Differences between what a watcher received and the event log."""

    def shape(event: event_pb2.Event) -> tuple[int, str, str, str]:
        return (event.sequence, kind(event), event.execution_id, event.node_id)

    got, want = [shape(e) for e in received], [shape(e) for e in log]
    if got == want:
        return []
    got_sequences = [s[0] for s in got]
    duplicated = sorted(s for s, n in Counter(got_sequences).items() if n > 1)
    missing = sorted({s[0] for s in want} - set(got_sequences))
    extra = sorted(set(got_sequences) - {s[0] for s in want})
    steps_back = [i for i, (a, b) in enumerate(pairwise(got_sequences), 1) if a >= b]
    differing = (i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w)
    first = steps_back[0] if steps_back else next(differing, min(len(got), len(want)))
    return [
        f"{name} received {len(got)} events, the log holds {len(want)}: {len(missing)} missing"
        f" (first {missing[:10]}), {len(duplicated)} received twice ({duplicated[:10]}), {len(extra)} not"
        f" in the log ({extra[:10]}), {len(steps_back)} times a sequence not above the one before;"
        f" received around the first difference: {got[max(0, first - 3) : first + 3]}"
    ]


# -- the chaos test ---------------------------------------------------------------------------------------


@dataclass
class Started:
    run: str
    kind: str
    tag: str
    via: int


@dataclass
class Fleet:
    """The runs the chaos test started, and the resumes it sent."""

    cluster: Cluster
    workflows: dict[str, str]
    runs: dict[str, Started] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    to_resume: set[str] = field(default_factory=set)
    resumes: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # run -> replica, action, reason
    notes: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.notes.append(f"{time.monotonic() - self.began:6.1f} s  {what}")

    def start(self, kind: str, count: int = 1, via: int | None = None) -> list[str]:
        """Start runs of one kind, round robin over the live replicas unless `via` says which."""
        started = []
        for _ in range(count):
            tag = f"{kind}-{self.counts[kind]}"
            self.counts[kind] += 1
            data: dict[str, Any] = {"tag": tag}
            if kind == "loop":
                data["items"] = ["a", "b", "c"]
            target = via if via is not None else self.cluster.next_live()
            for _attempt in range(5):
                try:
                    execution = self.cluster.client(target).start(
                        workflow_id=self.workflows[kind], input=data, request_id=f"start-{tag}"
                    )
                    break
                except grpc.RpcError as error:
                    if error.code() not in TRANSIENT:
                        raise
                    target = self.cluster.next_live(exclude=[target])
            else:
                raise AssertionError(explain(self.cluster, f"no replica would start {tag}"))
            self.runs[execution.id] = Started(execution.id, kind, tag, target)
            if kind in ("wait", "approval"):
                self.to_resume.add(execution.id)
            started.append(execution.id)
        return started

    def wave(self) -> None:
        """One of each kind, a few times over, through all live replicas."""
        for name, count in (("timer", 2), ("wait", 2), ("approval", 2), ("loop", 1), ("parent", 2)):
            self.start(name, count)

    def in_flight(self, http: RecordingHttpServer, count: int = 2) -> None:
        """Start `count` slow runs through the live replicas and wait until their requests arrived: at
        the restart that follows, they are mid-node on live replicas, which must keep them."""
        tags = {self.runs[run].tag for run in self.start("slow", count)}
        http.wait_for(
            lambda calls: tags <= {c.body.get("tag") for c in calls if isinstance(c.body, dict)}, 15
        )

    def resume_ready(self) -> None:
        """Resume the waits and approvals that reached their pause point, each through a replica other
        than the one that started it (and than its driver when known). A resume that could not be sent
        is tried again later with the same request_id, so a retry is a replay, not a second resume."""
        for run in sorted(self.to_resume):
            live = self.cluster.live()
            if len(live) < 2:
                return
            started = self.runs[run]
            try:
                execution = self.cluster.client(live[0]).get(run)
            except grpc.RpcError as error:
                if error.code() in TRANSIENT:
                    continue
                raise
            points = [
                p for p in execution.pause_points if p.resume_status == pause_point_pb2.RESUME_STATUS_PAUSED
            ]
            if execution.status != PAUSED or not points:
                continue
            via, _ = others(self.cluster, started.via, run)
            values: dict[str, Any] = {"approved": True} if started.kind == "approval" else {"by": via}
            try:
                reply = self.cluster.client(via).approve(
                    points[0].context_id, values, request_id=f"resume-{run}"
                )
            except grpc.RpcError as error:
                if error.code() in TRANSIENT:
                    continue
                raise
            self.resumes[run] = (via, execution_pb2.ResumeAction.Name(reply.action), reply.reason)
            self.to_resume.discard(run)

    def sleep(self, secs: float) -> None:
        """Let time pass, resuming whatever reaches its pause point meanwhile."""
        until = time.monotonic() + secs
        while True:
            self.resume_ready()
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))

    def finish(self, timeout: float) -> None:
        """Resume what is left and wait until every run (sub-workflow runs included) ended, or the
        timeout passed (the checks report what did not end)."""
        deadline = time.monotonic() + timeout
        while True:
            self.resume_ready()
            audits = audit(self.cluster.db_url, list(self.runs))
            ended = all(record.ended for record in audits.values())
            if (ended and not self.to_resume) or time.monotonic() > deadline:
                return
            time.sleep(0.3)


def chaos_workflows(client: Client, url: str) -> dict[str, str]:
    child = create(client, linear(delay("nap", 0.8), http_node("ping", url, wait=0.3), name="child"))
    loop = {
        "id": "loop",
        "type": "for_each",
        "config": {"items": "input.items", "concurrency": 2},
        "body": {
            "nodes": [delay("nap", 0.4), http_node("call", url, in_loop=True)],
            "edges": [{"from": "nap", "to": "call"}],
        },
    }
    documents = {
        "timer": linear(delay("nap", 1.5), log("note"), http_node("call", url, wait=0.3), name="timer"),
        "wait": linear(
            http_node("call", url),
            {"id": "hold", "type": "wait"},
            log("note"),
            name="wait",
            output="{{ nodes.hold.output }}",
        ),
        "approval": linear(APPROVAL, http_node("call", url), name="approval"),
        "loop": linear(loop, name="loop"),
        "parent": linear(
            {
                "id": "sub",
                "type": "subworkflow",
                "config": {"workflowId": child.id, "input": {"tag": "{{ input.tag }}-child"}},
            },
            log("note"),
            name="parent",
        ),
        # Its request is answered after 3 s: the replica driving it is stalled mid-request.
        "slow": linear(http_node("call", url, wait=3.0), log("note"), name="slow"),
    }
    return {name: create(client, doc).id for name, doc in documents.items()}


def http_key_problems(
    http: RecordingHttpServer, tags: Mapping[str, str], histories: Mapping[str, Sequence[event_pb2.Event]]
) -> tuple[list[str], int]:
    """Every request of one node instance carries one key, `<run id>/<node key>`; every http node that
    completed called out. Answers the problems and how many requests were repeats."""
    sent = http.keys_by_node()
    keys = {node: set(seen) for node, seen in sent.items()}
    calls = {node: len(seen) for node, seen in sent.items()}
    problems = []
    for (tag, key), seen in sorted(keys.items()):
        run = tags.get(tag)
        if run is None:
            problems.append(f"requests from an unknown run tag {tag!r} node {key}: keys {seen}")
        elif seen != {f"{run}/{key}"}:
            problems.append(f"{run} ({tag}) node {key}: {calls[(tag, key)]} requests with keys {seen}")
    for run, events in histories.items():
        run_tag = next((t for t, r in tags.items() if r == run), None)
        for event in events:
            if (
                kind(event) == "NODE_COMPLETED"
                and event.node_completed_attributes.node_type == "http"
                and (str(run_tag), node_key(event)) not in keys
            ):
                problems.append(f"{run} ({run_tag}) node {node_key(event)} completed without a request")
    return problems, sum(n - 1 for n in calls.values())


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_runs_survive_kills_and_stalls_and_end_exactly_once(tmp_path: Path) -> None:
    """Runs with delays, waits, approvals, for_each, sub-workflows and http nodes, started through every
    live replica in four waves, while replica 0 is SIGKILLed and restarted three times and replica 1 is
    SIGSTOPped for 2.5 lease TTLs with requests in flight; waits and approvals are resumed through a
    replica other than the one that started them. Then, from the database, the API and the recording
    server: every run ended exactly once, no node completed twice, one idempotency key per http node,
    a gapless log, and watchers on replicas 2 and 0 that received every event once, in order."""
    with (
        RecordingHttpServer() as http,
        running_cluster(tmp_path / "chaos", 3, lease_ttl=TTL) as cluster,
    ):
        # replica 0 is killed and restarted, replica 1 stalled (SIGSTOP), replica 2 left alone.
        steady = cluster.client(2)
        workflows = chaos_workflows(steady, http.url)
        # Watchers from the start of the log: one on the steady replica, one on the replica that is
        # killed (reconnecting from its cursor after each restart).
        watchers = {
            "StreamEvents on replica 2": EventWatcher(cluster, 2).start(),
            "StreamEvents on replica 0 (reconnecting)": EventWatcher(cluster, 0, reconnect=True).start(),
        }
        fleet = Fleet(cluster, workflows)
        try:
            fleet.note("wave 1 through replicas 0, 1, 2")
            fleet.wave()
            fleet.sleep(1.0)
            cluster.kill(0)
            fleet.note("SIGKILL replica 0 (1 of 3); wave 2 through 1 and 2")
            fleet.wave()
            fleet.in_flight(http)
            cluster.restart(0)
            fleet.note("replica 0 restarted (slow requests in flight on 1 and 2)")
            fleet.sleep(0.5)
            slow = fleet.start("slow", 4, via=1)
            slow_tags = {fleet.runs[run].tag for run in slow}
            http.wait_for(
                lambda calls: slow_tags <= {c.body.get("tag") for c in calls if isinstance(c.body, dict)},
                timeout=15,
            )
            cluster.pause(1)
            stalled = time.monotonic()
            fleet.note("SIGSTOP replica 1 (its slow requests in flight); wave 3 through 0 and 2")
            fleet.wave()
            fleet.sleep(1.0)
            cluster.kill(0)
            fleet.note("SIGKILL replica 0 (2 of 3) while replica 1 is stopped")
            fleet.sleep(0.5)
            fleet.in_flight(http)
            cluster.restart(0)
            fleet.note("replica 0 restarted (slow requests in flight on 2, and on the stopped 1)")
            fleet.sleep(max(0.0, stalled + 2.5 * TTL - time.monotonic()))
            cluster.resume(1)
            fleet.note(f"SIGCONT replica 1 after {time.monotonic() - stalled:.1f} s")
            fleet.sleep(1.0)
            cluster.kill(0)
            fleet.note("SIGKILL replica 0 (3 of 3); wave 4 through 1 and 2")
            fleet.wave()
            fleet.in_flight(http)
            cluster.restart(0)
            fleet.note(
                "replica 0 restarted (slow requests in flight on 1 and 2); waiting for every run to end"
            )
            fleet.finish(timeout=60)
            fleet.note(f"every run ended; {SETTLE:g} s more for late writers (a stalled replica, a re-run)")
            # A replica that lost its runs, or re-ran one, may still commit: nothing it commits must count.
            fleet.sleep(SETTLE)
            audits = audit(cluster.db_url, list(fleet.runs))
            check_chaos(cluster, http, fleet, watchers, audits)
        finally:
            for watcher in watchers.values():
                watcher.close()


def check_chaos(
    cluster: Cluster,
    http: RecordingHttpServer,
    fleet: Fleet,
    watchers: Mapping[str, EventWatcher],
    audits: Mapping[str, RunAudit],
) -> None:
    """Every check of the chaos test; all findings are reported together."""
    findings: list[str] = []
    unended = [record for record in audits.values() if not record.ended]
    client = cluster.client(2)
    if unended:
        findings.append(
            f"{len(unended)} runs never ended: "
            + ", ".join(f"{a.execution_id} ({a.status})" for a in unended[:10])
        )
    labels = {run: started.tag for run, started in fleet.runs.items()}
    for record in audits.values():
        if record.parent_execution_id:
            labels[record.execution_id] = f"child of {labels.get(record.parent_execution_id, '?')}"
    # -- the database: one terminal event per run, no node completed twice ------------------------------
    for record in audits.values():
        if record.ended:
            label = labels.get(record.execution_id, "?")
            findings += [f"database: {record.execution_id} ({label}): {p}" for p in record.problems()]
    children = [run for run, record in audits.items() if record.parent_execution_id]
    if len(children) != fleet.counts["parent"]:
        findings.append(f"{len(children)} sub-workflow runs for {fleet.counts['parent']} parents: {children}")
    sequences = event_sequences(cluster.db_url)
    if sequences != list(range(1, len(sequences) + 1)):
        gaps = sorted(set(range(1, (sequences or [0])[-1] + 1)) - set(sequences))
        findings.append(f"the event log's sequences have gaps or repeats: missing {gaps[:20]}")
    # -- the API: histories, statuses, resumes ---------------------------------------------------------------
    tags: dict[str, str] = {}
    histories: dict[str, list[event_pb2.Event]] = {}
    for run in audits:
        execution = client.get(run)
        tag = json_format.MessageToDict(execution.input).get("tag", "")
        tags[str(tag)] = run
        events = history(client, run)
        histories[run] = events
        findings += [f"history: {p} ({labels.get(run, '?')})" for p in history_problems(run, events)]
        if execution.status != COMPLETED:
            findings.append(
                f"{run} ({tag}) is {common_pb2.ExecutionStatus.Name(execution.status)}:"
                f" {json_format.MessageToDict(execution.error)}"
            )
    for run, (via, action, reason) in sorted(fleet.resumes.items()):
        if action != "RESUME_ACTION_RESUMED":
            findings.append(f"resume of {run} through replica {via} answered {action} {reason!r}")
    if fleet.to_resume:
        findings.append(f"pause points never reached or never resumed: {sorted(fleet.to_resume)}")
    # -- the outside world: one idempotency key per http node ------------------------------------------
    key_problems, repeats = http_key_problems(http, tags, histories)
    findings += key_problems
    # -- watchers on other replicas saw the whole log, once, in order -----------------------------------
    log = full_log(client)
    if [e.sequence for e in log] != sequences:
        findings.append("ListEvents does not list exactly the events in the database")
    head = log[-1].sequence if log else 0
    for name, watcher in watchers.items():
        watcher.wait_for(head, timeout=10)
        findings += watch_problems(name, watcher.received(), log)
        if watcher.error is not None:
            findings.append(f"{name} ended with {watcher.error!r}")
    summary = (
        f"{len(fleet.runs)} runs started ({dict(fleet.counts)}), {len(children)} sub-workflow runs,"
        f" {len(fleet.resumes)} resumes, {len(http.calls())} http requests ({repeats} repeats),"
        f" {len(log)} events"
    )
    print(summary, *fleet.notes, sep="\n")  # shown with -s or -rP
    assert not findings, explain(
        cluster,
        f"{summary}\ntimeline:\n"
        + "\n".join(fleet.notes)
        + f"\n{len(findings)} findings (first 40):\n"
        + "\n".join(findings[:40]),
    )


# -- one cluster shared by the smaller tests -------------------------------------------------------------


@dataclass
class Shared:
    cluster: Cluster
    http: RecordingHttpServer


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    with (
        RecordingHttpServer() as http,
        running_cluster(tmp_path_factory.mktemp("shared"), 3, lease_ttl=SHARED_TTL) as cluster,
    ):
        yield Shared(cluster, http)


@pytest.fixture
def cluster(shared: Shared) -> Cluster:
    """The shared cluster with every replica up (a test that failed midway may have left one down)."""
    for replica in shared.cluster.replicas:
        if replica.paused:
            shared.cluster.resume(replica.index)
        if not replica.running:
            shared.cluster.restart(replica.index)
    return shared.cluster


@pytest.fixture
def http(shared: Shared) -> RecordingHttpServer:
    return shared.http


def status_name(status: common_pb2.ExecutionStatus.ValueType) -> str:
    return str(common_pb2.ExecutionStatus.Name(status).removeprefix("EXECUTION_STATUS_"))


FINISHED_NAMES = ("COMPLETED", "ERROR", "STOPPED")


def describe_run(execution: execution_pb2.Execution) -> str:
    error = json_format.MessageToDict(execution.error)
    return f"{execution.id} {status_name(execution.status)} nodes {node_states(execution)}" + (
        f" error {error}" if error else ""
    )


def wait_status(
    cluster: Cluster,
    run: str,
    statuses: Sequence[common_pb2.ExecutionStatus.ValueType],
    timeout: float = 15,
) -> execution_pb2.Execution:
    """The run once its status (read through any live replica) is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        execution = cluster.client(cluster.other_live()).get(run)
        if execution.status in statuses:
            return execution
        if time.monotonic() > deadline:
            wanted = [status_name(s) for s in statuses]
            raise AssertionError(
                explain(cluster, f"after {timeout:g} s still not {wanted}: {describe_run(execution)}")
            )
        time.sleep(0.05)


def wait_node(cluster: Cluster, run: str, node: str, state: str, timeout: float = 15) -> None:
    """Wait until the run's top-level `node` is in `state` (a NodeStatus word: waiting, completed...)."""
    deadline = time.monotonic() + timeout
    while True:
        execution = cluster.client(cluster.other_live()).get(run)
        if node_states(execution).get(node) == state:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                explain(
                    cluster, f"after {timeout:g} s {node} is still not {state}: {describe_run(execution)}"
                )
            )
        time.sleep(0.05)


def completes(cluster: Cluster, run: str, timeout: float = 15) -> execution_pb2.Execution:
    """The run once it ended, which must be COMPLETED."""
    execution = wait_status(cluster, run, FINISHED, timeout)
    assert execution.status == COMPLETED, explain(
        cluster, f"ended but not completed: {describe_run(execution)}"
    )
    return execution


def requested(http: RecordingHttpServer, tag: str) -> bool:
    return any(isinstance(c.body, dict) and c.body.get("tag") == tag for c in http.calls())


def requested_by(call: HttpCall, prefix: str) -> bool:
    """Whether the request came from a run whose tag starts with `prefix`."""
    return isinstance(call.body, dict) and str(call.body.get("tag", "")).startswith(prefix)


@pytest.mark.postgres
def test_stop_through_another_replica_cancels_the_drivers_nodes(
    cluster: Cluster, http: RecordingHttpServer
) -> None:
    """A stop sent to a replica that does not drive the run is committed before it answers, and the
    driver's node in flight (an http request, a long delay) is cancelled: nothing completes after it."""
    calling = linear(http_node("call", http.url, wait=3.0), log("after"), name="stop-http")
    napping = linear(delay("nap", 600), log("after"), name="stop-delay")
    runs: list[tuple[str, int, str]] = []
    for starter in range(3):
        for doc, node in ((calling, "call"), (napping, "nap")):
            tag = f"stop-{node}-{starter}"
            runs.append((cluster.client(starter).start(doc, input={"tag": tag}).id, starter, node))
    poll(
        cluster, lambda: all(requested(http, f"stop-call-{s}") for s in range(3)), "the requests arrived", 10
    )
    for run, _, node in runs:
        if node == "nap":
            wait_node(cluster, run, "nap", "waiting")
    for run, starter, node in runs:
        via, reader = others(cluster, starter, run)
        reply = cluster.client(via).stop(run, reason="replica test")
        assert (reply.execution_id, reply.was_running, reply.was_queued) == (run, True, False), reply
        execution = cluster.client(reader).get(run)  # committed before the answer: visible everywhere
        assert execution.status == STOPPED, explain(
            cluster, f"stopped through replica {via}, read through {reader}: {describe_run(execution)}"
        )
        assert node_states(execution)[node] == "stopped", explain(cluster, f"{run}: {node_states(execution)}")
        again = code_of(partial(cluster.client(reader).stop, run))
        assert again == grpc.StatusCode.FAILED_PRECONDITION, f"a second stop answered {again}"

    # The stop cancelled each driver's request: when its answer came due, its caller had gone, so
    # no answer can reach a driver and change the run after the stop.
    def answers_due() -> list[tuple[HttpCall, bool]]:
        return [(c, gone) for c, gone in http.ended() if requested_by(c, "stop-call-")]

    poll(cluster, lambda: len(answers_due()) >= 3, "the stopped requests' answers came due", 10)
    kept = [c.body for c, gone in answers_due() if not gone]
    assert not kept, explain(cluster, f"requests still awaited after the stop: {kept}")
    histories = assert_once(cluster, [run for run, _, _ in runs])
    for run, _, node in runs:
        types = [(kind(e), node_key(e)) for e in histories[run]]
        assert types[-1][0] == "EXECUTION_STOPPED", explain(cluster, f"{run}: {types}")
        went_on = [t for t in types if t in (("NODE_COMPLETED", node), ("NODE_STARTED", "after"))]
        assert not went_on, explain(cluster, f"{run}: the driver went on after the stop: {types}")
        assert cluster.client(cluster.other_live()).get(run).status == STOPPED


@pytest.mark.postgres
def test_operator_pause_and_resume_through_other_replicas(cluster: Cluster) -> None:
    """PauseExecution and ResumeExecution sent to replicas that do not drive the run: the run holds at
    the next node boundary, then goes on; a WatchExecution on a third replica sees every event once."""
    doc = linear(delay("nap", 1.0), log("after"), name="operator-pause")
    runs = [(cluster.client(i).start(doc, input={"tag": f"hold-{i}"}).id, i) for i in range(3)]
    for run, _ in runs:
        wait_node(cluster, run, "nap", "waiting")
    watched: dict[str, list[event_pb2.Event]] = {}
    threads = []
    for run, starter in runs:
        pauser, resumer = others(cluster, starter, run)
        paused = cluster.client(pauser).pause_execution(run, reason="replica test")
        assert paused.id == run
        # Watched from the replica that will resume it, not the one that started it.
        events: list[event_pb2.Event] = []
        watched[run] = events

        def follow(run: str = run, into: list[event_pb2.Event] = events, via: int = resumer) -> None:
            with cluster.new_client(via) as client:
                for message in client.watch_execution(run, after_sequence=0):
                    into.extend(message.events.events if message.HasField("events") else ())

        threads.append(threading.Thread(target=follow, daemon=True))
        threads[-1].start()
    for run, _ in runs:
        # The delay's end is committed with what the driver made of it: the node after it held back.
        wait_node(cluster, run, "nap", "completed")
    for run, _ in runs:
        held = cluster.client(cluster.other_live()).get(run)
        assert held.status == PAUSED and held.pause_reason == common_pb2.PAUSE_REASON_MANUAL, explain(
            cluster, f"not held by the operator's pause: {describe_run(held)}"
        )
        states = node_states(held)
        assert states["nap"] == "completed" and states.get("after", "idle") == "idle", explain(
            cluster, f"{run} went on while paused: {states}"
        )
    for run, starter in runs:
        _, resumer = others(cluster, starter, run)
        cluster.client(resumer).resume_execution(run)
    for run, _ in runs:
        completes(cluster, run)
    histories = assert_once(cluster, [run for run, _ in runs])
    for thread in threads:
        thread.join(10)
    for run, _ in runs:
        types = [kind(e) for e in histories[run]]
        assert types.index("EXECUTION_PAUSED") < types.index("EXECUTION_RESUMED"), types
        problems = watch_problems(f"WatchExecution of {run}", watched[run], histories[run])
        assert not problems, explain(cluster, "\n".join(problems))


@pytest.mark.postgres
def test_breakpoints_and_trace_logs_through_other_replicas(
    cluster: Cluster, http: RecordingHttpServer
) -> None:
    """Continue and skip at a breakpoint, and trace logs switched on, each sent to a replica that does
    not drive the run, take effect in the driver."""
    doc = linear(
        {"id": "first", "type": "transform", "config": {"output": "{{ input.tag }}"}, "breakpoint": True},
        http_node("call", http.url),
        {"id": "second", "type": "transform", "config": {"output": "x{{ input.tag }}"}},
        name="breakpoints",
    )
    continued = [(cluster.client(i).start(doc, input={"tag": f"bp-{i}"}).id, i) for i in range(3)]
    skipped = [(cluster.client(i).start(doc, input={"tag": f"skip-{i}"}).id, i) for i in range(3)]
    for run, _ in continued + skipped:
        held = wait_status(cluster, run, (PAUSED,))
        assert held.pause_reason == common_pb2.PAUSE_REASON_BREAKPOINT
    for run, starter in continued:
        tracer, continuer = others(cluster, starter, run)
        reply = cluster.client(tracer).executions.SetTraceLogs(
            execution_pb2.SetTraceLogsRequest(execution_id=run, enabled=True), timeout=10
        )
        assert reply.enabled
        assert cluster.client(continuer).continue_(run).id == run
        assert code_of(partial(cluster.client(tracer).continue_, run)) == grpc.StatusCode.FAILED_PRECONDITION
    for run, starter in skipped:
        via, _ = others(cluster, starter, run)
        cluster.client(via).control_pause(execution_pb2.PAUSE_ACTION_SKIP, run)
    for run, _ in continued + skipped:
        completes(cluster, run)
    histories = assert_once(cluster, [run for run, _ in continued + skipped])
    for run, _ in continued:
        done = cluster.client(cluster.other_live()).get(run)
        nodes = {n.node_id: n for n in done.nodes}
        assert done.trace_logs and nodes["second"].logs, explain(
            cluster, f"{run}: no trace logs in the driver"
        )
        assert "NODE_LOG" in [kind(e) for e in histories[run]]
    for run, _ in skipped:
        assert node_states(cluster.client(cluster.other_live()).get(run))["first"] == "skipped"


@pytest.mark.postgres
def test_workflow_pause_resume_and_cancel_through_other_replicas(cluster: Cluster) -> None:
    """A workflow paused through one replica holds the runs every replica drives at their next node
    boundary and queues new starts on any replica; resumed through another, they all go on; cancelled
    through a third, its runs are stopped before the answer and every replica refuses new starts."""
    client = cluster.client(0)
    held = create(client, linear(delay("nap", 1.0), log("after"), name="held"))
    runs = [cluster.client(i).start(workflow_id=held.id, input={"tag": f"wf-{i}"}).id for i in range(3)]
    for run in runs:
        wait_node(cluster, run, "nap", "waiting")
    assert cluster.client(1).pause_workflow(held.id).status == workflow_pb2.WORKFLOW_STATUS_PAUSED
    queued = cluster.client(2).start(workflow_id=held.id, input={"tag": "wf-queued"})
    assert queued.status == QUEUED, explain(
        cluster,
        "a run started through replica 2 after the workflow was paused through replica 1 is"
        f" {status_name(queued.status)}, not QUEUED",
    )
    assert code_of(lambda: cluster.client(0).pause_workflow(held.id)) == grpc.StatusCode.FAILED_PRECONDITION
    for run in runs:
        wait_node(cluster, run, "nap", "completed")  # committed with the decision on the node after it
    for run in runs:
        execution = cluster.client(0).get(run)
        assert (
            execution.status == PAUSED and execution.pause_reason == common_pb2.PAUSE_REASON_WORKFLOW_PAUSED
        ), explain(cluster, f"not held by the workflow pause: {describe_run(execution)}")
        assert node_states(execution).get("after", "idle") == "idle", describe_run(execution)
    assert cluster.client(0).get(queued.id).status == QUEUED
    assert cluster.client(2).resume_workflow(held.id).status == workflow_pb2.WORKFLOW_STATUS_ACTIVE
    for run in [*runs, queued.id]:
        completes(cluster, run)
    assert_once(cluster, [*runs, queued.id])

    doomed = create(client, linear(delay("nap", 600), log("after"), name="doomed"))
    runs = [cluster.client(i).start(workflow_id=doomed.id, input={"tag": f"doomed-{i}"}).id for i in range(3)]
    for run in runs:
        wait_status(cluster, run, (RUNNING,))
    reply = cluster.client(1).cancel_workflow(doomed.id, reason="replica test")
    assert reply.status == workflow_pb2.WORKFLOW_STATUS_CANCELLED
    for run in runs:
        for reader in (0, 2):
            assert cluster.client(reader).get(run).status == STOPPED, explain(cluster, f"{run} via {reader}")
    for i in range(3):
        assert (
            code_of(partial(cluster.client(i).start, workflow_id=doomed.id))
            == grpc.StatusCode.FAILED_PRECONDITION
        )
    time.sleep(0.5)
    assert_once(cluster, runs)


@pytest.mark.postgres
def test_batch_stop_through_another_replica(cluster: Cluster) -> None:
    """StopBatch through a replica other than the one that started the batch: counts as on one process,
    committed before the answer, and no replica starts a cancelled run afterwards."""
    long = create(cluster.client(0), linear(delay("nap", 600), name="batch-long"))
    batch = cluster.client(0).start_batch(workflow_ids=[long.id] * 5, concurrency=2)
    poll(cluster, lambda: cluster.client(2).get_batch(batch.batch_id).running == 2, "two batch runs run", 10)
    reply = cluster.client(1).stop_batch(batch.batch_id, reason="replica test")
    assert (reply.running_stopped, reply.queued_cancelled) == (2, 3), reply
    for reader in (0, 2):
        stopped = cluster.client(reader).get_batch(batch.batch_id)
        assert stopped.status == batch_resource_pb2.BATCH_STATUS_STOPPED, explain(
            cluster, f"via {reader}: {stopped}"
        )
        assert (stopped.stopped, stopped.running, stopped.queued) == (5, 0, 0), stopped
    time.sleep(1.0)  # no replica starts a cancelled run or goes on with a stopped one
    runs = [item.execution_id for item in cluster.client(2).get_batch(batch.batch_id).executions]
    assert len(runs) == 5
    for run in runs:
        assert cluster.client(0).get(run).status == STOPPED
    assert_once(cluster, runs)
    # Replica 0 now keeps these ended runs in memory; a clear through another replica reaches it too.
    cleared = cluster.client(1).batches.ClearBatches(batch_pb2.ClearBatchesRequest(), timeout=20)
    assert cleared.executions_deleted >= 5, cleared

    def gone_everywhere() -> bool:
        for reader in (0, 2):
            for run in runs:
                try:
                    cluster.client(reader).get(run, view=execution_pb2.EXECUTION_VIEW_FULL)
                    return False
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return True

    poll(cluster, gone_everywhere, "the cleared runs are gone on every replica", 5)


@pytest.mark.postgres
def test_a_batch_concurrency_limit_holds_across_the_cluster(cluster: Cluster) -> None:
    """A batch's concurrency is a limit for the whole cluster: sampled through every replica, and from
    the event log afterwards, never more of its runs RUNNING at once."""
    short = create(cluster.client(0), linear(delay("nap", 0.6), log("note", "batch"), name="batch-short"))
    limit, total = 2, 9
    batch = cluster.client(1).start_batch(workflow_ids=[short.id] * total, concurrency=limit)
    samples: list[tuple[int, int, int]] = []  # replica, runs RUNNING, the batch's own count
    deadline = time.monotonic() + 30
    turn = 0
    while True:
        i = turn % 3
        turn += 1
        client = cluster.client(i)
        running = client.list_executions(batch_id=batch.batch_id, statuses=[RUNNING], page_size=1).total_size
        current = client.get_batch(batch.batch_id)
        samples.append((i, running, current.running))
        if current.status != batch_resource_pb2.BATCH_STATUS_RUNNING:
            break
        assert time.monotonic() < deadline, explain(cluster, f"batch still running: {current}")
        time.sleep(0.05)
    assert current.status == batch_resource_pb2.BATCH_STATUS_COMPLETED and current.completed == total, current
    over = [s for s in samples if max(s[1], s[2]) > limit]
    assert not over, explain(
        cluster, f"more than {limit} runs RUNNING at once (replica, runs, batch): {over}"
    )
    assert max(max(s[1], s[2]) for s in samples) == limit, samples
    runs = [item.execution_id for item in current.executions]
    histories = assert_once(cluster, runs)
    spans = []
    for run in runs:
        times = {kind(e): seconds(e.time) for e in histories[run]}
        spans.append((times["EXECUTION_STARTED"], times["EXECUTION_COMPLETED"]))
    overlap = max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)
    assert overlap <= limit, explain(
        cluster, f"{overlap} runs of the batch ran at once by the event log: {spans}"
    )


@pytest.mark.postgres
def test_exactly_one_of_many_concurrent_resumes_on_different_replicas_wins(cluster: Cluster) -> None:
    """30 callers resume one pause point at once through all three replicas (ResumePausePoint, and
    ResumeNode with the webhook secret): one RESUMED, the rest SKIPPED 'already resumed', the run takes
    the winner's data, and the winner's retry through another replica replays RESUMED."""
    hold = create(
        cluster.client(0),
        linear({"id": "hold", "type": "wait"}, name="hold", output="{{ nodes.hold.output }}"),
    )
    callers = 30
    for starter in range(3):
        run = cluster.client(starter).start(workflow_id=hold.id, input={"tag": f"race-{starter}"}).id
        wait_status(cluster, run, (PAUSED,))
        (point,) = cluster.client(starter).get(run).pause_points
        by_point = starter != 1  # ResumePausePoint for two runs, ResumeNode for one
        barrier = threading.Barrier(callers)

        def call(
            n: int,
            run: str = run,
            context_id: str = point.context_id,
            by_point: bool = by_point,
            barrier: threading.Barrier = barrier,
        ) -> Any:
            client = cluster.client(n % 3)
            barrier.wait(10)
            if by_point:
                return client.approve(context_id, {"caller": n}, request_id=f"{run}-{n}")
            return client.resume_node(
                run, "hold", secret=hold.webhook_secret, data={"caller": n}, request_id=f"{run}-{n}"
            )

        with ThreadPoolExecutor(callers) as pool:
            replies = list(pool.map(call, range(callers)))
        winners = [n for n, reply in enumerate(replies) if reply.action == RESUMED]
        answers = [
            (n % 3, execution_pb2.ResumeAction.Name(r.action), r.reason) for n, r in enumerate(replies)
        ]
        assert len(winners) == 1, explain(
            cluster, f"{run}: {len(winners)} winners; (replica, action, reason) per caller: {answers}"
        )
        assert all(r.reason == "already resumed" for r in replies if r.action == SKIPPED), explain(
            cluster, f"{run}: a loser was told something else; (replica, action, reason): {answers}"
        )
        done = completes(cluster, run)
        assert json_format.MessageToDict(done.output) == {"caller": winners[0]}, explain(
            cluster, f"the run took {json_format.MessageToDict(done.output)}, the winner was {winners[0]}"
        )
        # The winner's retry, through yet another replica, replays its answer.
        retry_via = (winners[0] + 1) % 3
        again: Any
        if by_point:
            again = cluster.client(retry_via).approve(
                point.context_id, {"caller": winners[0]}, request_id=f"{run}-{winners[0]}"
            )
        else:
            again = cluster.client(retry_via).resume_node(
                run,
                "hold",
                secret=hold.webhook_secret,
                data={"caller": winners[0]},
                request_id=f"{run}-{winners[0]}",
            )
        assert again.action == RESUMED, again
        events = assert_once(cluster, [run])[run]
        assert [kind(e) for e in events].count("PAUSE_POINT_RESUMED") == 1


@pytest.mark.postgres
def test_a_workflow_paused_on_one_replica_starts_no_node_on_the_others_within_a_second(
    cluster: Cluster,
) -> None:
    """Runs driven by all three replicas step through short delays; the workflow is paused through
    replica 0: by the event log, no replica starts a node of its runs later than a second after the
    pause (plus slack), and all go on at resume."""
    chain = [delay(f"d{n}", 0.3) for n in range(1, 11)]
    steps = create(cluster.client(0), linear(*chain, name="steps"))
    runs = [
        cluster.client(i % 3).start(workflow_id=steps.id, input={"tag": f"steps-{i}"}).id for i in range(6)
    ]

    def moving() -> bool:
        return all(
            sum(1 for e in history(cluster.client(0), run) if kind(e) == "NODE_STARTED") >= 3 for run in runs
        )

    poll(cluster, moving, "every run started a few nodes", 15)
    paused = cluster.client(0).pause_workflow(steps.id, reason="replica test")
    paused_at = seconds(paused.pause_time)

    def held_still(run: str) -> bool:
        # Paused with no delay pending (each delay's end is committed with the decision to hold the
        # node after it): nothing can start until the workflow resumes. Or done.
        execution = cluster.client(1).get(run)
        pending = {"waiting", "running", "scheduled"} & set(node_states(execution).values())
        return execution.status == COMPLETED or (execution.status == PAUSED and not pending)

    poll(cluster, lambda: all(held_still(run) for run in runs), "every run is held still", 15)
    late: list[str] = []
    for run in runs:
        execution = cluster.client(1).get(run)
        late += [
            f"{run} started {e.node_id} {seconds(e.time) - paused_at:.2f} s after the pause"
            for e in history(cluster.client(2), run)
            if kind(e) == "NODE_STARTED" and seconds(e.time) > paused_at + PROPAGATION + SLACK
        ]
        if execution.status not in (PAUSED, COMPLETED):
            late.append(f"after the pause: {describe_run(execution)}")
    assert not late, explain(cluster, "nodes started after the workflow pause:\n" + "\n".join(late))
    cluster.client(2).resume_workflow(steps.id)
    for run in runs:
        completes(cluster, run, timeout=20)
    assert_once(cluster, runs)


@pytest.mark.postgres
def test_sigterm_hands_a_replicas_runs_over_well_within_the_lease_ttl(
    cluster: Cluster, http: RecordingHttpServer
) -> None:
    """Runs mid-request on a replica that gets SIGTERM go on elsewhere within seconds of its exit (its
    leases released as it drains), far sooner than the 10 s lease TTL would allow: each completes once,
    its request repeated (if at all) with the same idempotency key."""
    doc = linear(http_node("call", http.url, wait=1.5), delay("nap", 0.5), log("note"), name="handover")
    tags = {
        cluster.client(2).start(doc, input={"tag": f"handover-{n}"}).id: f"handover-{n}" for n in range(6)
    }
    poll(cluster, lambda: all(requested(http, tag) for tag in tags.values()), "every request arrived", 10)
    drivers = cluster.drivers(list(tags))
    victim = Counter(drivers.values()).most_common(1)[0][0] if drivers else 2
    moving = [run for run in tags if drivers.get(run, 2) == victim]
    held_by_victim = lease_owners(cluster, moving)
    assert held_by_victim, explain(cluster, f"replica {victim} held none of the runs it drives: {drivers}")
    took = cluster.stop(victim)
    exited = time.time()
    try:
        assert took < 10, explain(cluster, f"replica {victim} took {took:.1f} s to exit on SIGTERM")
        still_held = {
            run: owner
            for run, owner in lease_owners(cluster, moving).items()
            if owner == held_by_victim.get(run)
        }
        assert not still_held, explain(cluster, f"replica {victim} exited still holding leases: {still_held}")
        survivor = cluster.other_live(victim)

        def states() -> dict[str, str]:
            return {run: status_name(cluster.client(survivor).get(run).status) for run in moving}

        deadline = exited + HANDOVER
        while time.time() < deadline and not all(s in FINISHED_NAMES for s in states().values()):
            time.sleep(0.1)
        assert all(s in FINISHED_NAMES for s in states().values()), explain(
            cluster,
            f"runs of replica {victim} (SIGTERM, exited after {took:.1f} s) not finished {HANDOVER:g} s"
            f" later (lease TTL {SHARED_TTL:g} s): {states()}",
        )
        histories = assert_once(cluster, moving, via=survivor)
        for run in moving:
            assert kind(histories[run][-1]) == "EXECUTION_COMPLETED", [kind(e) for e in histories[run]]
            keys = {
                c.idempotency_key
                for c in http.calls()
                if isinstance(c.body, dict) and c.body.get("tag") == tags[run]
            }
            assert keys == {f"{run}/call"}, explain(cluster, f"{run}: requests with keys {keys}")
    finally:
        cluster.restart(victim)


# -- each with a database of its own ------------------------------------------------------------------------


@pytest.mark.postgres
def test_an_api_key_is_created_and_revoked_for_every_replica_within_a_second(tmp_path: Path) -> None:
    """Keys are made and revoked in the database (as `runctl keys` does): the first key ends dev mode on
    every replica, and a revoked key is refused by every replica within a second, its open stream on
    another replica ended; the other key keeps working."""
    with running_cluster(tmp_path / "keys", 2, lease_ttl=SHARED_TTL) as cluster:
        database = create_db_engine(cluster.db_url)
        clients: list[Client] = []
        try:
            made = time.monotonic()
            doomed = create_key(database, "acme", "doomed")
            steady = create_key(database, "acme", "steady")
            keyless = [cluster.new_client(i) for i in range(2)]
            with_doomed = [cluster.new_client(i, api_key=doomed.key) for i in range(2)]
            with_steady = [cluster.new_client(i, api_key=steady.key) for i in range(2)]
            clients = [*keyless, *with_doomed, *with_steady]

            def refused(client: Client) -> bool:
                try:
                    client.list_workflows(page_size=1)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                        return True
                    raise
                return False

            for i in range(2):
                poll(cluster, partial(refused, keyless[i]), f"replica {i} refuses keyless calls", 5)
                assert time.monotonic() - made < PROPAGATION + SLACK + 0.5, "dev mode lasted too long"
                assert not refused(with_doomed[i]) and not refused(with_steady[i])
            stream = with_doomed[1].events.StreamEvents(event_pb2.StreamEventsRequest())
            ended: list[BaseException] = []

            def read() -> None:
                try:
                    for _ in stream:
                        pass
                except grpc.RpcError as error:
                    ended.append(error)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            time.sleep(0.3)
            revoke_key(database, doomed.info.id)
            revoked = time.monotonic()
            refused_after: dict[int, float] = {}
            while len(refused_after) < 2 and time.monotonic() - revoked < 5:
                for i in range(2):
                    if i not in refused_after and refused(with_doomed[i]):
                        refused_after[i] = time.monotonic() - revoked
                time.sleep(0.02)
            reader.join(5)
            assert (
                all(t <= PROPAGATION + SLACK for t in refused_after.values()) and len(refused_after) == 2
            ), explain(cluster, f"the revoked key was refused after {refused_after} s (replica: seconds)")
            assert ended and isinstance(ended[0], grpc.RpcError), explain(cluster, "the stream did not end")
            assert ended[0].code() == grpc.StatusCode.UNAUTHENTICATED
            for i in range(2):
                assert not refused(with_steady[i]), f"replica {i} refuses the key that was not revoked"
        finally:
            for client in clients:
                client.close()
            database.dispose()


@pytest.mark.postgres
def test_a_webhook_secret_rotated_on_one_replica_is_the_only_one_every_replica_accepts(
    cluster: Cluster,
) -> None:
    """RotateWebhookSecret without overlap through one replica: the next ResumeNode with the old secret
    is refused by the other replicas at once (the secret is checked against the committed workflow row,
    never a replica's copy), and the new secret resumes the run through a third."""
    hold = create(cluster.client(0), linear({"id": "hold", "type": "wait"}, name="rotated"))
    run = cluster.client(1).start(workflow_id=hold.id, input={}).id
    wait_status(cluster, run, (PAUSED,))
    new_secret = cluster.client(2).rotate_webhook_secret(hold.id, overlap_seconds=0).workflow.webhook_secret
    assert new_secret and new_secret != hold.webhook_secret
    for replica in (0, 1):
        old = partial(cluster.client(replica).resume_node, run, "hold", secret=hold.webhook_secret, data={})
        assert code_of(old) == grpc.StatusCode.UNAUTHENTICATED, f"replica {replica} took the old secret"
    reply = cluster.client(0).resume_node(run, "hold", secret=new_secret, data={"by": "new"})
    assert reply.action == RESUMED, reply
    completes(cluster, run)


@pytest.mark.postgres
def test_a_watcher_opened_late_on_an_idle_replica_gets_every_event(cluster: Cluster) -> None:
    """A replica with no watchers skips reading the events other replicas commit (the log is the
    truth); a watcher that opens there later catches up from the log, then follows runs driven
    elsewhere live, every event once and in order."""
    doc = linear(log("note"), name="late-watch")
    early = [cluster.client(0).start(doc, input={"tag": f"early-{n}"}).id for n in range(10)]
    for run in early:
        completes(cluster, run)
    histories = {run: history(cluster.client(0), run) for run in early}
    first = min(int(e.sequence) for events in histories.values() for e in events)
    watcher = EventWatcher(cluster, 1, after_sequence=first - 1).start()
    try:
        late = [cluster.client(2).start(doc, input={"tag": f"late-{n}"}).id for n in range(10)]
        for run in late:
            completes(cluster, run)
        histories |= {run: history(cluster.client(0), run) for run in late}
        expected = {int(e.sequence) for events in histories.values() for e in events}
        assert watcher.wait_for(max(expected), 15), explain(
            cluster, f"the watcher on replica 1 stopped at {watcher.last_sequence()} of {max(expected)}"
        )
        received = [int(e.sequence) for e in watcher.received()]
        assert received == sorted(set(received)), "events repeated or out of order"
        missing = sorted(expected - set(received))
        assert not missing, explain(cluster, f"the watcher on replica 1 missed {missing}")
    finally:
        watcher.close()
