"""Engine throughput: completed runs/s and durable node transitions/s through the real server.

Starts `runctl serve` as a subprocess (a temp SQLite file unless `--db-url` says otherwise), creates one
workflow of 10 trivial nodes (start -> 8 transforms -> end), keeps `--concurrency` StartExecution calls in
flight until `--runs` runs are started, and polls ListExecutions until all of them completed. Transitions
are counted afterwards from the committed event log (the NODE_* events), so every figure is committed
state. Run from the repository root:

    .venv/bin/python bench/engine_throughput.py [--runs 2000] [--concurrency 64] [--db-url URL]
        [--sqlite-synchronous FULL|NORMAL|both]

On SQLite it measures synchronous=FULL (runctl's default: an acknowledged change survives a power loss)
and then NORMAL (survives a process crash only), each on a fresh database, and prints both.

With a PostgreSQL URL the benchmark creates a throwaway database on that server and drops it afterwards.
`--profile out.txt` records the server with py-spy (raw collapsed stacks) during the measured phase.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
from google.protobuf import json_format, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from runctl.v1 import common_pb2, execution_pb2, execution_pb2_grpc, workflow_pb2, workflow_pb2_grpc
from runctl_server.store.database import create_db_engine

LOOPBACK = "127.0.0.1"
# Node executions/s (NODE_COMPLETED events / wall) one process should reach, by database.
TARGET_NODE_EXECUTIONS = {"sqlite": 8000, "postgresql": 5000}
SEQUENTIAL_STARTS = 200
TARGET_SEQUENTIAL_START_P50_MS = 5.0
# The peer runs at these concurrencies and its best is compared (DBOS contends on SQLite's one writer,
# so it is often fastest with few threads).
PEER_CONCURRENCIES = (1, 8, 64)
TRANSFORMS = 8  # + start + end = 10 nodes
WARMUP_RUNS = 50
POLL_SECONDS = 0.1
STALL_SECONDS = 60.0
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# -- the database -------------------------------------------------------------------------------------


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() in ("postgres", "postgresql")


@contextmanager
def database(db_url: str | None, workdir: Path) -> Iterator[str]:
    """The URL the server gets: a temp SQLite file, the given SQLite URL, or a throwaway PG database."""
    if db_url is None:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    if not is_postgres(db_url):
        yield db_url
        return
    admin_url = make_url(db_url).set(drivername="postgresql")
    admin_dsn = admin_url.render_as_string(hide_password=False)
    name = f"runctl_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise SystemExit(f"cannot create a throwaway database on {redact(db_url)}: {exc}") from None
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Stored:
    """What the benchmark reads back from the database after the run."""

    kind: str
    durability: dict[str, str]
    events_by_type: dict[str, int]
    last_completion: float


def read_back(db_url: str, workflow_id: str, sqlite_synchronous: str) -> Stored:
    """Events of the measured runs and the durability settings, through the server's own engine setup
    (so SQLite connections get exactly the pragmas the server's connections get)."""
    engine = create_db_engine(db_url, sqlite_synchronous=sqlite_synchronous)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                kind = "sqlite"
                durability = {
                    "journal_mode": str(conn.execute(text("PRAGMA journal_mode")).scalar()),
                    "synchronous": SYNCHRONOUS.get(
                        int(conn.execute(text("PRAGMA synchronous")).scalar() or 0), "?"
                    ),
                }
            else:
                kind = "postgresql"
                durability = {
                    setting: str(conn.execute(text(f"SHOW {setting}")).scalar())
                    for setting in ("synchronous_commit", "fsync", "wal_sync_method")
                }
            rows = conn.execute(
                text(
                    "SELECT type, COUNT(*) FROM events WHERE workflow_id = :w AND execution_id IS NOT NULL"
                    " GROUP BY type ORDER BY type"
                ),
                {"w": workflow_id},
            ).all()
            last_completion = conn.execute(
                text("SELECT MAX(time) FROM events WHERE workflow_id = :w AND type = 'EXECUTION_COMPLETED'"),
                {"w": workflow_id},
            ).scalar()
    finally:
        engine.dispose()
    return Stored(
        kind=kind,
        durability=durability,
        events_by_type={str(row[0]): int(row[1]) for row in rows},
        last_completion=float(last_completion or 0.0),
    )


# -- the server ---------------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def wait_serving(server: Server) -> None:
    deadline = time.monotonic() + 60
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server at {server.target} did not become SERVING:\n{server.log_tail()}")
            await asyncio.sleep(0.1)


@contextmanager
def spawn_server(db_url: str, workdir: Path, sqlite_synchronous: str = "FULL") -> Iterator[Server]:
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "RUNCTL_SQLITE_SYNCHRONOUS": sqlite_synchronous,
        "RUNCTL_DRAIN_SECONDS": "0",
        "RUNCTL_DB_URL": db_url,
        "RUNCTL_GRPC_ADDR": f"{LOOPBACK}:{grpc_port}",
        "RUNCTL_HTTP_ADDR": f"{LOOPBACK}:{http_port}",
    }
    log_path = workdir / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "runctl.cli", "serve", "--log-level", "WARNING"],
            env=env,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"{LOOPBACK}:{grpc_port}", log_path)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def py_spy(pid: int, output: Path | None) -> Iterator[None]:
    """Record the server with py-spy while the block runs (no-op without an output path).

    `--gil` samples only the thread holding the GIL: the server is one Python process, so that is
    where its one effective core goes. Sampling pauses the server, so profiled figures run slower."""
    if output is None:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    recorder = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--output",
            str(output),
            "--format",
            "raw",
            "--rate",
            os.environ.get("RUNCTL_PROFILE_RATE", "100"),
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # let it attach
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            _, err = recorder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, err = recorder.communicate()
        if recorder.returncode not in (0, -signal.SIGINT):
            print(
                f"py-spy exited with {recorder.returncode}: {err.decode(errors='replace')}", file=sys.stderr
            )


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Cpu:
    """CPU seconds the server and this client spent in the measured phase, and the host's load."""

    server: float | None = None
    client: float = 0.0
    load_average: float | None = None


@contextmanager
def cpu_usage(pid: int) -> Iterator[Cpu]:
    cpu = Cpu(load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    server_before, client_before = process_cpu_seconds(pid), own_cpu_seconds()
    yield cpu
    server_after = process_cpu_seconds(pid)
    if server_before is not None and server_after is not None:
        cpu.server = server_after - server_before
    cpu.client = own_cpu_seconds() - client_before


# -- the load -----------------------------------------------------------------------------------------


@dataclass
class Load:
    runs: int
    concurrency: int
    started: float = 0.0  # time.time() of the first StartExecution
    monotonic_start: float = 0.0
    starts_done: float = 0.0  # monotonic, when the last StartExecution answered
    observed_done: float = 0.0  # monotonic, when polling saw every run finished
    latencies: list[float] = field(default_factory=list)
    completed: int = 0
    failed: int = 0


async def count(
    stub: execution_pb2_grpc.ExecutionServiceAsyncStub,
    workflow_id: str,
    *statuses: common_pb2.ExecutionStatus.ValueType,
) -> int:
    """How many runs of the workflow are in one of `statuses`: total_size of a one-row page."""
    request = execution_pb2.ListExecutionsRequest(workflow_id=workflow_id, statuses=statuses, page_size=1)
    reply = await stub.ListExecutions(request, timeout=30)
    return int(reply.total_size)


async def drive(
    stub: execution_pb2_grpc.ExecutionServiceAsyncStub, workflow_id: str, runs: int, concurrency: int
) -> Load:
    """Keep `concurrency` starts in flight until `runs` are started; poll until all finished."""
    load = Load(runs, concurrency)
    next_index = 0

    async def starter() -> None:
        nonlocal next_index
        while next_index < runs:
            index = next_index
            next_index += 1
            request = execution_pb2.StartExecutionRequest(workflow_id=workflow_id, input=struct({"n": index}))
            began = time.perf_counter()
            await stub.StartExecution(request, timeout=60)
            load.latencies.append(time.perf_counter() - began)

    async def starters() -> None:
        await asyncio.gather(*(starter() for _ in range(min(concurrency, runs))))
        load.starts_done = time.monotonic()

    load.started = time.time()
    load.monotonic_start = time.monotonic()
    starting = asyncio.create_task(starters())
    last_progress, last_seen, ticks = time.monotonic(), -1, 0
    try:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if starting.done():
                starting.result()  # a failed start ends the benchmark
            load.completed = await count(stub, workflow_id, common_pb2.EXECUTION_STATUS_COMPLETED)
            ticks += 1
            if ticks % 10 == 0 or load.completed >= runs:
                load.failed = await count(
                    stub,
                    workflow_id,
                    common_pb2.EXECUTION_STATUS_ERROR,
                    common_pb2.EXECUTION_STATUS_STOPPED,
                )
            if load.completed + load.failed >= runs and starting.done():
                load.observed_done = time.monotonic()
                return load
            if load.completed != last_seen:
                last_seen, last_progress = load.completed, time.monotonic()
            elif time.monotonic() - last_progress > STALL_SECONDS:
                raise TimeoutError(f"no progress for {STALL_SECONDS:g}s: {load.completed}/{runs} completed")
    finally:
        if not starting.done():
            starting.cancel()


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


async def create_workflow(channel: grpc.aio.Channel, name: str) -> str:
    workflows = workflow_pb2_grpc.WorkflowServiceStub(channel)
    request = workflow_pb2.CreateWorkflowRequest(definition=definition(name))
    created = await workflows.CreateWorkflow(request, timeout=30)
    return str(created.workflow.id)


async def warm_up(target: str, runs: int, concurrency: int) -> None:
    """Unmeasured runs of their own workflow, so first-call costs stay out of the figures."""
    if runs:
        async with grpc.aio.insecure_channel(target) as channel:
            workflow_id = await create_workflow(channel, "bench warmup")
            await drive(execution_pb2_grpc.ExecutionServiceStub(channel), workflow_id, runs, concurrency)


async def sequential_starts(target: str, workflow_id: str, runs: int) -> list[float]:
    """StartExecution latencies, one call at a time (each waits for its commit)."""
    latencies = []
    async with grpc.aio.insecure_channel(target) as channel:
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        for n in range(runs):
            request = execution_pb2.StartExecutionRequest(workflow_id=workflow_id, input=struct({"n": n}))
            began = time.perf_counter()
            await executions.StartExecution(request, timeout=30)
            latencies.append(time.perf_counter() - began)
    return latencies


async def measure(target: str, runs: int, concurrency: int) -> tuple[str, Load]:
    async with grpc.aio.insecure_channel(target) as channel:
        workflow_id = await create_workflow(channel, "bench")
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        load = await drive(executions, workflow_id, runs, concurrency)
        # Final check through the API: every run completed, none failed.
        load.completed = await count(executions, workflow_id, common_pb2.EXECUTION_STATUS_COMPLETED)
        load.failed = await count(
            executions,
            workflow_id,
            common_pb2.EXECUTION_STATUS_ERROR,
            common_pb2.EXECUTION_STATUS_STOPPED,
        )
        return workflow_id, load


# -- the report ---------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_line(cpu: Cpu, wall: float, runs: int) -> str:
    server = ""
    if cpu.server is not None:
        server = (
            f"server {cpu.server:.1f} s ({cpu.server / wall:.2f} cores,"
            f" {cpu.server / runs * 1000:.2f} ms per run)"
        )
    parts = [server, f"client {cpu.client:.1f} s ({cpu.client / wall:.2f} cores)", f"{os.cpu_count()} CPUs"]
    if cpu.load_average is not None:
        parts.append(f"load average {cpu.load_average:.2f} before the run")
    return ", ".join(part for part in parts if part)


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def report(db_url: str, load: Load, stored: Stored, cpu: Cpu, sequential: list[float]) -> tuple[bool, float]:
    """Print the figures; answers whether the run was valid (every run completed, events complete) and
    the node executions/s."""
    events = stored.events_by_type
    node_events = sum(n for kind, n in events.items() if kind.startswith("NODE_"))
    all_events = sum(events.values())
    expected_node_events = load.runs * (TRANSFORMS + 2) * 2  # each node: STARTED + COMPLETED
    observed_wall = load.observed_done - load.monotonic_start
    # Wall time: first StartExecution sent -> last EXECUTION_COMPLETED committed (same host clock);
    # falls back to what polling observed (100 ms resolution).
    wall = stored.last_completion - load.started if stored.last_completion > load.started else observed_wall
    starts_wall = load.starts_done - load.monotonic_start
    transitions_per_s = node_events / wall
    executions_per_s = events.get("NODE_COMPLETED", 0) / wall
    valid = load.completed == load.runs and load.failed == 0 and node_events == expected_node_events
    durability = ", ".join(f"{k}={v}" for k, v in stored.durability.items())

    rows = [
        ("database", f"{stored.kind} ({redact(db_url)})"),
        ("durability", durability),
        ("runs (N)", f"{load.runs} x {TRANSFORMS + 2} nodes"),
        ("concurrency (C)", f"{load.concurrency} StartExecution calls in flight"),
        ("completed / failed", f"{load.completed} / {load.failed}"),
        (
            "wall",
            f"{wall:.2f} s (first start -> last completion committed; polling saw {observed_wall:.2f} s)",
        ),
        ("runs/s", f"{load.completed / wall:,.0f}"),
        ("node executions/s", f"{executions_per_s:,.0f} (NODE_COMPLETED events committed / wall)"),
        ("node transitions/s", f"{transitions_per_s:,.0f} ({node_events} NODE_* events committed)"),
        ("events/s", f"{all_events / wall:,.0f} ({all_events} events committed)"),
        ("starts/s", f"{load.runs / starts_wall:,.0f} (all {load.runs} started in {starts_wall:.2f} s)"),
        (
            "start latency",
            f"p50 {percentile(load.latencies, 0.5) * 1000:.1f} ms,"
            f" p99 {percentile(load.latencies, 0.99) * 1000:.1f} ms,"
            f" mean {statistics.fmean(load.latencies) * 1000:.1f} ms",
        ),
        (
            "sequential starts",
            f"p50 {percentile(sequential, 0.5) * 1000:.2f} ms,"
            f" p99 {percentile(sequential, 0.99) * 1000:.2f} ms"
            f" ({len(sequential)} StartExecution calls one at a time, after the measured phase)",
        ),
        ("cpu", cpu_line(cpu, wall, load.runs)),
        ("events by type", ", ".join(f"{k}={v}" for k, v in events.items())),
    ]
    width = max(len(name) for name, _ in rows)
    print("runctl engine throughput")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    target = TARGET_NODE_EXECUTIONS.get(stored.kind, 0)
    verdict = "MET" if valid and executions_per_s >= target else "NOT MET"
    print(f"  target >= {target:,} node executions/s on {stored.kind}: {verdict}")
    p50_ms = percentile(sequential, 0.5) * 1000
    verdict = "MET" if p50_ms <= TARGET_SEQUENTIAL_START_P50_MS else "NOT MET"
    print(f"  target sequential StartExecution p50 <= {TARGET_SEQUENTIAL_START_P50_MS:g} ms: {verdict}")
    if not valid:
        print(
            f"  INVALID RUN: expected {load.runs} completed, 0 failed"
            f" and {expected_node_events} NODE_* events",
            file=sys.stderr,
        )
    return valid, executions_per_s


def peer(runs: int, synchronous: str) -> dict[str, Any] | None:
    """DBOS running the same 10-step workflow (bench/dbos_peer.py, its own process), at its best
    concurrency; None when dbos is not installed."""
    best: dict[str, Any] | None = None
    for concurrency in PEER_CONCURRENCIES:
        script = Path(__file__).with_name("dbos_peer.py")
        command = [sys.executable, str(script), "--runs", str(runs), "--concurrency", str(concurrency)]
        done = subprocess.run(
            [*command, "--synchronous", synchronous], capture_output=True, text=True, timeout=900, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"  peer DBOS failed: {done.stderr[-500:]}", file=sys.stderr)
            return best
        figures = json.loads(lines[-1])
        if "error" in figures:
            print(f"  peer: {figures['error']}")
            return None
        figures["concurrency"] = concurrency
        print(
            f"  peer DBOS, {concurrency:>2} threads: {figures['steps_per_s']:,.0f} steps/s"
            f" ({figures['runs']} workflows of 10 steps, synchronous={figures['synchronous']})"
        )
        if best is None or figures["steps_per_s"] > best["steps_per_s"]:
            best = figures
    return best


# -- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="runs to start and complete (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="StartExecution calls in flight (64)")
    parser.add_argument(
        "--db-url",
        default=None,
        help="sqlite:///path, or postgresql://user@host:port/db to run in a throwaway database on that"
        " server (default: a temp SQLite file)",
    )
    parser.add_argument("--warmup", type=int, default=WARMUP_RUNS, help="unmeasured runs first (50)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a py-spy profile of the server during the measured phase (raw collapsed stacks;"
        " needs `pip install py-spy`; slows the server down)",
    )
    parser.add_argument(
        "--peer-runs",
        type=int,
        default=300,
        help="workflows per DBOS peer measurement on SQLite (0 = skip the peer; default 300)",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("FULL", "NORMAL", "both"),
        default="both",
        help="SQLite durability to measure: FULL (the default, survives power loss), NORMAL, or both"
        " one after the other on fresh databases (default both; PostgreSQL ignores it)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--runs and --concurrency must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    postgres = args.db_url is not None and is_postgres(args.db_url)
    settings = ["FULL", "NORMAL"] if args.sqlite_synchronous == "both" else [args.sqlite_synchronous]
    valid = True
    for sqlite_synchronous in ["FULL"] if postgres else settings:
        with tempfile.TemporaryDirectory(prefix="runctl-bench-") as tmp:
            workdir = Path(tmp)
            with (
                database(args.db_url, workdir) as db_url,
                spawn_server(db_url, workdir, sqlite_synchronous) as server,
            ):
                asyncio.run(wait_serving(server))
                print(f"server pid {server.process.pid} on {server.target}", flush=True)
                asyncio.run(warm_up(server.target, args.warmup, min(args.concurrency, args.warmup or 1)))
                with py_spy(server.process.pid, args.profile), cpu_usage(server.process.pid) as cpu:
                    workflow_id, load = asyncio.run(measure(server.target, args.runs, args.concurrency))
                stored = read_back(db_url, workflow_id, sqlite_synchronous)
                sequential = asyncio.run(sequential_starts(server.target, workflow_id, SEQUENTIAL_STARTS))
                run_valid, executions_per_s = report(db_url, load, stored, cpu, sequential)
                valid = run_valid and valid
        if not postgres and args.peer_runs > 0:
            best = peer(args.peer_runs, sqlite_synchronous)
            if best is not None:
                print(
                    f"  runctl / DBOS (best) on SQLite synchronous={sqlite_synchronous}:"
                    f" {executions_per_s / best['steps_per_s']:.1f}x"
                    f" ({executions_per_s:,.0f} node executions/s vs {best['steps_per_s']:,.0f} steps/s)"
                )
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
