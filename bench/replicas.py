"""Replica scaling: node executions/s with 1, 2 and 3 replicas on one PostgreSQL database, in one run.

Creates a throwaway database as the test suite does (tests/postgres.py: the PostgreSQL server on
127.0.0.1:5432, else a throwaway cluster) and starts `runctl serve` on it (tests/replicas.py). Each
phase adds a replica, so one database serves all three phases: 1 replica, then 2, then 3. A phase runs
`--warmup` unmeasured runs, then keeps `--concurrency` StartExecution calls in flight, spread round
robin over the phase's replicas, until `--runs` runs of a 10-node workflow (start -> 8 transforms ->
end, its own workflow per phase) are started, and polls the database until all of them ended. From
the committed event log it takes the wall time (first start sent -> last EXECUTION_COMPLETED
committed) and the NODE_COMPLETED events, and prints per phase:

    node exec/s      NODE_COMPLETED events / wall, and the ratio to the 1-replica phase
    server CPU/run   CPU of the replica processes (/proc/<pid>/stat) per run, in ms
    pg CPU/run       CPU of every `postgres` process on this machine per run, in ms
    lock waits       pg_stat_activity sampled every 20 ms: backends of this database waiting on a
                     heavyweight lock (Lock) or an LWLock, on average, of the active ones
    lease/claim      counters with `lease` or `claim` in their name from each replica's /metrics
                     (Prometheus text), when the server exposes them; skipped otherwise
    twice            runs of the phase with more than one terminal event

Run from the repository root:

    .venv/bin/python bench/replicas.py [--runs 6000] [--concurrency 256] [--max-replicas 3]

The defaults keep 256 starts in flight, so that with two or three replicas each still has a full group
commit's worth of work (one replica is bound by its core from 64 in flight on: 5,151 node executions/s
at 128, 5,049 and 4,978 at 256), and 6,000 runs a phase, so that ramp-up and drain (about a second)
are a small part of a phase of 10-15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
from google.protobuf import json_format, struct_pb2

from runctl.v1 import execution_pb2, workflow_pb2, workflow_pb2_grpc

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))  # for tests.replicas, when run as `python bench/replicas.py`

from tests.golang import GO_IMPORT_ROOT, go_env, gopath_with_repository  # noqa: E402
from tests.postgres import temporary_database  # noqa: E402
from tests.replicas import Cluster, audit, process_cpu_seconds  # noqa: E402

sys.path.insert(0, str(REPOSITORY / "bench"))
from engine_throughput import py_spy  # noqa: E402

TRANSFORMS = 8  # + start + end = 10 nodes
POLL_SECONDS = 0.25  # the wall time comes from the event log, not from when a poll saw the end
STALL_SECONDS = 60.0
LOCK_SAMPLE_SECONDS = 0.05


def definition(name: str) -> workflow_pb2.WorkflowDefinition:
    """start -> t1 ... t8 -> end; every transform renders `{{ input.n }}`."""
    ids = ["start", *(f"t{i}" for i in range(1, TRANSFORMS + 1)), "end"]
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    nodes += [{"id": i, "type": "transform", "config": {"output": "{{ input.n }}"}} for i in ids[1:-1]]
    nodes.append({"id": "end", "type": "end"})
    document = {
        "name": name,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)],
    }
    return json_format.ParseDict(document, workflow_pb2.WorkflowDefinition())


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


# -- what the machine and the database spend --------------------------------------------------------------


def postgres_cpu_seconds() -> float:
    """CPU seconds of every live `postgres` process on this machine (server and backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        total += process_cpu_seconds(int(entry.name)) or 0.0
    return total


def host_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, /proc/stat), for the share of its cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class LockSampler:
    """Samples pg_stat_activity of one database in a thread: active backends and those waiting on locks."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.samples = 0
        self.active = 0
        self.waits: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                self.active += len(rows)
                for kind, event in rows:
                    if kind in ("Lock", "LWLock"):
                        self.waits[f"{kind}:{event}"] += 1
                time.sleep(LOCK_SAMPLE_SECONDS)

    def line(self) -> str:
        if not self.samples:
            return "-"
        waiting = sum(self.waits.values()) / self.samples
        top = ", ".join(f"{name} {n / self.samples:.2f}" for name, n in self.waits.most_common(3))
        return f"{waiting:.2f} of {self.active / self.samples:.2f} active" + (f" ({top})" if top else "")


def lease_metrics(cluster: Cluster, replicas: list[int]) -> dict[str, float] | None:
    """Sum over the replicas of every /metrics sample whose name mentions a lease or a claim; None
    when no replica exposes any."""
    found: dict[str, float] = {}
    exposed = False
    for i in replicas:
        try:
            reply = httpx.get(f"{cluster.replicas[i].http_url}/metrics", timeout=5)
        except httpx.HTTPError:
            continue
        if reply.status_code != 200:
            continue
        for line in reply.text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            metric = name.split("{", 1)[0]
            if "lease" in metric or "claim" in metric:
                exposed = True
                try:
                    found[metric] = found.get(metric, 0.0) + float(value)
                except ValueError:
                    continue
    return found if exposed else None


# -- the load ---------------------------------------------------------------------------------------------


@dataclass
class Phase:
    replicas: int
    runs: int
    started_at: float = 0.0  # time.time() of the first StartExecution
    done_at: float = 0.0  # monotonic, when polling saw every run ended
    began: float = 0.0  # monotonic
    completed: int = 0
    failed: int = 0
    node_completions: int = 0
    last_completion: float = 0.0
    twice: int = 0
    server_cpu: float = 0.0
    pg_cpu: float = 0.0
    client_cpu: float = 0.0
    # CPU of bench/loadgen, when it sent the starts (part of client_cpu).
    loadgen_cpu: float = 0.0
    host_busy: float = 0.0
    locks: str = "-"
    leases: dict[str, float] | None = None
    per_replica_starts: Counter[int] = field(default_factory=Counter)

    @property
    def wall(self) -> float:
        observed = self.done_at - self.began
        if self.last_completion > self.started_at:
            return self.last_completion - self.started_at
        return observed

    @property
    def node_rate(self) -> float:
        return self.node_completions / self.wall if self.wall > 0 else 0.0


async def drive(
    targets: list[str],
    workflow_id: str,
    db_url: str,
    runs: int,
    concurrency: int,
    phase: Phase,
    loadgen: Path | None = None,
) -> None:
    """Keep `concurrency` starts in flight, round robin over `targets`, until `runs` are started; poll
    the database until all of them ended. The starts come from `loadgen` (bench/loadgen, compiled)
    when given, else from this process."""
    if loadgen is not None:
        await drive_compiled(loadgen, targets, workflow_id, db_url, runs, concurrency, phase)
        return
    channels = [grpc.aio.insecure_channel(target) for target in targets]
    # The load client shares the machine's two cores with the replicas and PostgreSQL: its requests
    # are serialized before the phase and sent as bytes, so what it spends per run is the call alone.
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
        channel.unary_unary("/runctl.v1.ExecutionService/StartExecution") for channel in channels
    ]
    requests = [
        execution_pb2.StartExecutionRequest(
            workflow_id=workflow_id, input=struct({"n": n})
        ).SerializeToString()
        for n in range(runs)
    ]
    counter = itertools.count()

    async def starter() -> None:
        while (n := next(counter)) < runs:
            target = n % len(calls)
            await calls[target](requests[n], timeout=60)
            phase.per_replica_starts[target] += 1

    try:
        phase.started_at = time.time()
        phase.began = time.monotonic()
        starting = asyncio.gather(*(starter() for _ in range(min(concurrency, runs))))
        await wait_until_ended(db_url, workflow_id, runs, phase, starting)
    finally:
        for channel in channels:
            await channel.close()


async def drive_compiled(
    loadgen: Path,
    targets: list[str],
    workflow_id: str,
    db_url: str,
    runs: int,
    concurrency: int,
    phase: Phase,
) -> None:
    """The starts from bench/loadgen: it connects, says "ready", starts on our line and reports the
    starts per target and its CPU once every call was answered."""
    process = await asyncio.create_subprocess_exec(
        str(loadgen),
        f"-targets={','.join(targets)}",
        f"-workflow={workflow_id}",
        f"-runs={runs}",
        f"-concurrency={concurrency}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        if (await asyncio.wait_for(process.stdout.readline(), 60)).strip() != b"ready":
            raise RuntimeError("bench/loadgen did not connect to the replicas")
        phase.started_at = time.time()
        phase.began = time.monotonic()
        process.stdin.write(b"go\n")
        await process.stdin.drain()

        async def starting() -> None:
            output = await process.stdout.read() if process.stdout is not None else b""
            if await process.wait() != 0:
                raise RuntimeError(f"bench/loadgen failed (exit status {process.returncode})")
            result = json.loads(output)
            phase.per_replica_starts.update(dict(enumerate(result["starts"])))
            phase.loadgen_cpu = float(result["cpu_seconds"])

        await wait_until_ended(db_url, workflow_id, runs, phase, asyncio.ensure_future(starting()))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def wait_until_ended(
    db_url: str, workflow_id: str, runs: int, phase: Phase, starting: asyncio.Future[Any]
) -> None:
    """Poll the database until every run of the phase ended (and every start was answered)."""
    # One connection for the whole phase (a new one would start a PostgreSQL backend at every poll).
    ending = await asyncio.to_thread(lambda: psycopg.connect(db_url, autocommit=True))

    def ended() -> tuple[int, int]:
        row = ending.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'),"
            " count(*) FILTER (WHERE status IN ('error', 'stopped'))"
            " FROM executions WHERE workflow_id = %s",
            (workflow_id,),
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    try:
        last_progress, last_seen = time.monotonic(), -1
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if starting.done():
                starting.result()  # a failed start ends the benchmark
            phase.completed, phase.failed = await asyncio.to_thread(ended)
            if phase.completed + phase.failed >= runs and starting.done():
                starting.result()
                phase.done_at = time.monotonic()
                return
            if phase.completed != last_seen:
                last_seen, last_progress = phase.completed, time.monotonic()
            elif time.monotonic() - last_progress > STALL_SECONDS:
                raise TimeoutError(f"no progress for {STALL_SECONDS:g} s: {phase.completed}/{runs} completed")
    finally:
        if not starting.done():
            starting.cancel()
        ending.close()


async def create_workflow(target: str, name: str) -> str:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await workflow_pb2_grpc.WorkflowServiceStub(channel).CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=definition(name)), timeout=30
        )
        return str(reply.workflow.id)


def read_back(db_url: str, workflow_id: str, phase: Phase) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE type = 'NODE_COMPLETED'),"
            " max(time) FILTER (WHERE type = 'EXECUTION_COMPLETED')"
            " FROM events WHERE workflow_id = %s",
            (workflow_id,),
        ).fetchone()
        runs = [
            r[0] for r in conn.execute("SELECT id FROM executions WHERE workflow_id = %s", (workflow_id,))
        ]
    phase.node_completions = int(row[0]) if row else 0
    phase.last_completion = float(row[1]) if row and row[1] is not None else 0.0
    phase.twice = sum(1 for record in audit(db_url, runs, children=False).values() if record.ended_twice)


def settle(db_url: str) -> None:
    """Start each phase from the same state of the database: the earlier phases' dead rows vacuumed
    and the tables analyzed, and a checkpoint taken, so that no phase pays for an autovacuum or the
    full-page writes after a checkpoint that an earlier one caused."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) executions, node_states, events")
        conn.execute("CHECKPOINT")


def measure(cluster: Cluster, live: list[int], args: argparse.Namespace) -> Phase:
    targets = [cluster.replicas[i].grpc_target for i in live]
    phase = Phase(replicas=len(live), runs=args.runs)
    if args.warmup:
        warm = asyncio.run(create_workflow(targets[0], f"warm-up {len(live)}"))
        asyncio.run(
            drive(
                targets,
                warm,
                cluster.db_url,
                args.warmup,
                args.concurrency,
                Phase(len(live), args.warmup),
                args.loadgen,
            )
        )
    workflow_id = asyncio.run(create_workflow(targets[0], f"bench {len(live)} replicas"))
    settle(cluster.db_url)
    pids = [cluster.replicas[i].pid for i in live]
    before = {
        "server": sum(process_cpu_seconds(pid) or 0.0 for pid in pids if pid is not None),
        "pg": postgres_cpu_seconds(),
        "client": own_cpu_seconds(),
        "host": host_busy_seconds(),
    }
    leases_before = lease_metrics(cluster, live)
    with contextlib.ExitStack() as profiles, LockSampler(cluster.db_url) as locks:
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for i, pid in zip(live, pids, strict=True):
                if pid is not None:
                    output = args.profile / f"phase{len(live)}-replica{i}.txt"
                    profiles.enter_context(py_spy(pid, output))
        asyncio.run(
            drive(targets, workflow_id, cluster.db_url, args.runs, args.concurrency, phase, args.loadgen)
        )
    phase.server_cpu = (
        sum(process_cpu_seconds(pid) or 0.0 for pid in pids if pid is not None) - before["server"]
    )
    phase.pg_cpu = postgres_cpu_seconds() - before["pg"]
    phase.client_cpu = own_cpu_seconds() - before["client"] + phase.loadgen_cpu
    phase.host_busy = host_busy_seconds() - before["host"]
    phase.locks = locks.line()
    leases_after = lease_metrics(cluster, live)
    if leases_after is not None:
        phase.leases = {k: v - (leases_before or {}).get(k, 0.0) for k, v in leases_after.items()}
    read_back(cluster.db_url, workflow_id, phase)
    return phase


# -- the report -------------------------------------------------------------------------------------------


def report(phases: list[Phase]) -> bool:
    ones = [p for p in phases if p.replicas == 1]
    base = sum(p.node_rate for p in ones) / len(ones) if ones else 1.0
    header = (
        "replicas",
        "runs",
        "wall s",
        "runs/s",
        "node exec/s",
        "x 1",
        "server CPU ms/run",
        "pg CPU ms/run",
        "client CPU ms/run",
        "host cores busy",
        "twice",
    )
    rows = []
    for p in phases:
        rows.append(
            (
                str(p.replicas),
                f"{p.completed}/{p.runs}",
                f"{p.wall:.2f}",
                f"{p.completed / p.wall:,.0f}",
                f"{p.node_rate:,.0f}",
                f"{p.node_rate / base:.2f}",
                f"{p.server_cpu / p.runs * 1000:.2f}",
                f"{p.pg_cpu / p.runs * 1000:.2f}",
                f"{p.client_cpu / p.runs * 1000:.2f}",
                f"{p.host_busy / p.wall:.2f} of {os.cpu_count()}",
                str(p.twice),
            )
        )
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    print("runctl replica scaling (10-node runs, one PostgreSQL database)")
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    for p in phases:
        starts = ", ".join(f"replica {i}: {n}" for i, n in sorted(p.per_replica_starts.items()))
        print(f"  {p.replicas} replica(s): lock waits {p.locks}; starts {starts}")
        if p.leases is None:
            print(
                "    lease/claim overhead: not exposed by the servers (no lease/claim counters at /metrics)"
            )
        else:
            figures = ", ".join(f"{k} {v:,.0f} ({v / p.runs:.2f}/run)" for k, v in sorted(p.leases.items()))
            print(f"    lease/claim counters: {figures}")
    valid = all(
        p.completed == p.runs and p.failed == 0 and p.node_completions == p.runs * (TRANSFORMS + 2)
        for p in phases
    )
    # Each 2-replica phase against the 1-replica phase just before it.
    ratios = [
        two.node_rate / one.node_rate
        for one, two in itertools.pairwise(phases)
        if one.replicas == 1 and two.replicas == 2 and one.node_rate > 0
    ]
    if ratios:
        mean = sum(ratios) / len(ratios)
        each = ", ".join(f"{r:.2f}x" for r in ratios)
        verdict = "MET" if mean >= 1.3 else "NOT MET"
        print(f"  2 replicas / 1 replica, each round: {each}; mean {mean:.2f}x")
        print(f"  2 replicas >= 1.3x the node executions/s of 1 (issue 12): {verdict}")
    print_projection(phases[-1])
    if not valid:
        print(
            f"  INVALID RUN: every phase must complete all its runs once, with {TRANSFORMS + 2}"
            " NODE_COMPLETED events each",
            file=sys.stderr,
        )
    return valid


def print_projection(phase: Phase) -> None:
    """What the measured CPU per run gives on a machine with a core for each replica.

    A replica is one process that uses at most one core; PostgreSQL spreads over the rest. With lock
    waits near zero, R replicas reach R times one replica's rate until PostgreSQL's own CPU per run
    uses up the cores left to it.
    """
    server_ms = phase.server_cpu / phase.runs * 1000
    pg_ms = phase.pg_cpu / phase.runs * 1000
    if server_ms <= 0 or pg_ms <= 0:
        return
    per_replica = 1000 / server_ms
    per_pg_core = 1000 / pg_ms
    print(
        f"  with a core per replica (from the {phase.replicas}-replica phase):"
        f" about {per_replica:,.0f} runs/s per replica, while PostgreSQL needs a core"
        f" per {per_pg_core:,.0f} runs/s; lock waits {phase.locks}"
    )


def build_loadgen(workdir: Path) -> tuple[Path | None, str]:
    """Compile bench/loadgen in GOPATH mode (Debian's Go packages build offline); answers the binary,
    or None and why not."""
    if shutil.which("go") is None:
        return None, "go is not installed (apt-get install golang-go golang-google-grpc-dev)"
    gopath = gopath_with_repository(workdir / "gopath")
    binary = workdir / "loadgen"
    build = subprocess.run(
        ["go", "build", "-o", str(binary), f"{GO_IMPORT_ROOT}/bench/loadgen"],
        env=go_env(gopath),
        cwd=gopath,
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        return None, f"go build failed: {build.stderr.strip()[-500:]}"
    return binary, "bench/loadgen (Go)"


def choose_load_client(args: argparse.Namespace, workdir: Path) -> None:
    args.loadgen = None
    if args.load_client == "python":
        print("load client: this process (Python, grpc.aio)")
        return
    binary, what = build_loadgen(workdir)
    if binary is None:
        if args.load_client == "go":
            raise SystemExit(f"--load-client go: {what}")
        print(f"load client: this process (Python, grpc.aio); bench/loadgen unavailable: {what}")
        return
    args.loadgen = binary
    print(f"load client: {what}; completion polls and lock samples from this process")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=6000, help="measured runs per phase (6000)")
    parser.add_argument("--concurrency", type=int, default=256, help="StartExecution calls in flight (256)")
    parser.add_argument("--warmup", type=int, default=1000, help="unmeasured runs before each phase (1000)")
    parser.add_argument("--max-replicas", type=int, default=3, help="phases: 1 .. this many replicas (3)")
    parser.add_argument(
        "--lease-ttl", type=float, default=None, help="RUNCTL_LEASE_TTL_SECONDS (default: the server's)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record every replica with py-spy during the measured part, raw stacks into this folder",
    )
    parser.add_argument(
        "--load-client",
        choices=("auto", "go", "python"),
        default="auto",
        help="who sends the starts: bench/loadgen compiled with Go (auto: when Go builds it) or this"
        " Python process",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure 1 and then 2 replicas this many times, alternating (1)",
    )
    args = parser.parse_args(argv)
    if min(args.runs, args.concurrency, args.max_replicas, args.rounds) < 1 or args.warmup < 0:
        parser.error("--runs, --concurrency, --max-replicas and --rounds must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases: list[Phase] = []
    with (
        tempfile.TemporaryDirectory(prefix="runctl-replicas-") as tmp,
        temporary_database() as db_url,
        Cluster(
            db_url, Path(tmp), args.max_replicas, lease_ttl=args.lease_ttl, log_level="WARNING"
        ) as cluster,
    ):
        choose_load_client(args, Path(tmp))
        for count in phase_plan(args.max_replicas, args.rounds):
            for i in range(len(cluster)):
                wanted = i < count
                if wanted and not cluster.replicas[i].running:
                    cluster.start_replica(i)
                elif not wanted and cluster.replicas[i].running:
                    cluster.stop(i)  # SIGTERM: it drains and hands over, as in a rolling restart
            live = list(range(count))
            print(
                f"phase {len(phases) + 1}: replicas {live} (pids {[cluster.replicas[j].pid for j in live]})",
                flush=True,
            )
            phases.append(measure(cluster, live, args))
    return 0 if report(phases) else 1


def phase_plan(max_replicas: int, rounds: int) -> list[int]:
    """Replicas per phase: 1 and 2 alternated for every round (so the machine's drift and the growing
    tables weigh on both alike), then 3 and up once."""
    if max_replicas == 1:
        return [1] * rounds
    return [n for _ in range(rounds) for n in (1, 2)] + list(range(3, max_replicas + 1))


if __name__ == "__main__":
    sys.exit(main())
