"""Control-plane reads beside a raw gRPC server: how close runctl's reads come to gRPC itself.

Starts two servers as subprocesses on loopback: a raw `grpc.aio` server whose one handler answers an
empty message, and `runctl serve` on a temp SQLite file. One asyncio gRPC client drives both the same
way (request bytes in, response bytes out, so both servers do their whole job and the client the same
small one) and prints, for each call:

    rps at --concurrency callers for --seconds, and its ratio to the raw server
    p50 / p99 of sequential calls

The calls: GetExecution of a finished 2-node run with the BASIC view (the status read; it replaced
GetExecutionStatus) and with the FULL view; then, with --paused paused runs in the database (made by
starting a few hundred approval runs through the API and copying their rows in SQL, since starting
100,000 runs through the API would take most of the benchmark's time), a page of 50 of ListExecutions
(newest first, and filtered to PAUSED), ListPausedExecutions and ListPausePoints. Targets: status reads
at least 0.75x the raw server at 32 callers, sequential p50 at most 1.5 ms, a list page at most 20 ms.

    .venv/bin/python bench/control_rpc.py [--seconds 5] [--concurrency 32] [--paused 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))  # for tests.support, when run as `python bench/control_rpc.py`

from runctl.v1 import (  # noqa: E402
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    pause_point_pb2,
    workflow_pb2,
    workflow_pb2_grpc,
)
from tests.support import free_port, spawn_server  # noqa: E402

LOOPBACK = "127.0.0.1"
NOOP_PATH = "/bench.Noop/Call"
RAW_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    import grpc

    async def call(request, context):
        return b""

    async def main(port):
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(call)
        noop = grpc.method_handlers_generic_handler("bench.Noop", {"Call": handler})
        server.add_generic_rpc_handlers([noop])
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    asyncio.run(main(int(sys.argv[1])))
    """
)
Call = Callable[[], Awaitable[bytes]]


def identity(data: bytes) -> bytes:
    return data


@contextmanager
def raw_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", RAW_SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"{LOOPBACK}:{port}"
    finally:
        process.terminate()
        process.wait(10)


def linear(*middle: dict[str, Any], name: str) -> workflow_pb2.WorkflowDefinition:
    nodes = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return json_format.ParseDict(
        {"name": name, "nodes": nodes, "edges": edges}, workflow_pb2.WorkflowDefinition()
    )


def seed(target: str) -> tuple[str, str, list[str]]:
    """A finished 2-node run, an approval workflow and its first paused runs (ids)."""
    with grpc.insecure_channel(target) as channel:
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        workflows = workflow_pb2_grpc.WorkflowServiceStub(channel)
        finished = executions.StartExecution(
            execution_pb2.StartExecutionRequest(definition=linear(name="two nodes")), timeout=10
        ).execution.id
        approval = workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(
                definition=linear(
                    {"id": "ask", "type": "approval", "config": {"title": "Ship?"}}, name="approvals"
                )
            ),
            timeout=10,
        ).workflow.id
        paused = [
            executions.StartExecution(
                execution_pb2.StartExecutionRequest(workflow_id=approval), timeout=10
            ).execution.id
            for _ in range(200)
        ]
        deadline = time.monotonic() + 60
        for run in [finished, *paused]:
            while True:
                status = executions.GetExecution(
                    execution_pb2.GetExecutionRequest(
                        execution_id=run, view=execution_pb2.EXECUTION_VIEW_BASIC
                    ),
                    timeout=10,
                ).execution.status
                if status in (common_pb2.EXECUTION_STATUS_COMPLETED, common_pb2.EXECUTION_STATUS_PAUSED):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{run} still {status}")
                time.sleep(0.05)
    return finished, approval, paused


def copy_paused(db_path: Path, templates: list[str], total: int) -> None:
    """Copy the paused runs' rows (run, node states, pause point) until `total` runs are paused."""
    connection = sqlite3.connect(db_path, timeout=30)
    connection.row_factory = sqlite3.Row
    marks = ",".join("?" * len(templates))
    try:
        with connection:
            for table, key in (
                ("executions", "id"),
                ("node_states", "execution_id"),
                ("pause_points", "execution_id"),
            ):
                by_run: dict[str, list[dict[str, object]]] = {}
                for row in connection.execute(f"SELECT * FROM {table} WHERE {key} IN ({marks})", templates):
                    by_run.setdefault(row[key], []).append(dict(row))
                columns = list(next(iter(by_run.values()))[0])
                statement = (
                    f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
                )
                made = []
                for index in range(total - len(templates)):
                    for row in by_run[templates[index % len(templates)]]:
                        copy = {**row, key: f"exec_copy{index:015d}"}
                        if table == "executions":
                            copy["request_id"] = None
                        if table == "pause_points":
                            copy["context_id"] = f"ctx_copy{index:016d}"
                        made.append(tuple(copy[column] for column in columns))
                connection.executemany(statement, made)
    finally:
        connection.close()


async def rate(call: Call, concurrency: int, seconds: float) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await call()
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / (time.perf_counter() - began)


async def latencies(call: Call, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def unary(channel: grpc.aio.Channel, path: str, request: bytes) -> Call:
    method = channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)

    async def call() -> bytes:
        reply: bytes = await method(request, timeout=30)
        return reply

    return call


async def measure(
    raw_target: str, runctl_target: str, finished: str, approval: str, args: argparse.Namespace
) -> None:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with (
        grpc.aio.insecure_channel(raw_target, options=options) as raw,
        grpc.aio.insecure_channel(runctl_target, options=options) as runctl,
    ):
        service = "/runctl.v1.ExecutionService/"
        basic = execution_pb2.GetExecutionRequest(
            execution_id=finished, view=execution_pb2.EXECUTION_VIEW_BASIC
        )
        full = execution_pb2.GetExecutionRequest(
            execution_id=finished, view=execution_pb2.EXECUTION_VIEW_FULL
        )
        reads: list[tuple[str, Call]] = [
            ("raw grpc.aio noop", unary(raw, NOOP_PATH, b"")),
            (
                "GetExecution BASIC (status read)",
                unary(runctl, service + "GetExecution", basic.SerializeToString()),
            ),
            ("GetExecution FULL", unary(runctl, service + "GetExecution", full.SerializeToString())),
        ]
        for _, call in reads:  # warm up both servers and the channels
            await rate(call, args.concurrency, 0.5)
        print(
            f"\nreads of a finished 2-node run: {args.concurrency} concurrent for {args.seconds:g} s,"
            " then sequential"
        )
        print(f"  {'call':36} {'rps':>8} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8}")
        baseline = 0.0
        for name, call in reads:
            rps = await rate(call, args.concurrency, args.seconds)
            p50, p99 = await latencies(call, args.sequential)
            baseline = baseline or rps
            print(f"  {name:36} {rps:8.0f} {rps / baseline:6.2f}x {p50:8.2f} {p99:8.2f}")

        paused = [common_pb2.EXECUTION_STATUS_PAUSED]
        pages: list[tuple[str, Call]] = [
            (
                "ListExecutions (newest first)",
                unary(
                    runctl,
                    service + "ListExecutions",
                    execution_pb2.ListExecutionsRequest(page_size=50).SerializeToString(),
                ),
            ),
            (
                "ListExecutions (statuses=PAUSED)",
                unary(
                    runctl,
                    service + "ListExecutions",
                    execution_pb2.ListExecutionsRequest(page_size=50, statuses=paused).SerializeToString(),
                ),
            ),
            (
                "ListPausedExecutions (workflow)",
                unary(
                    runctl,
                    "/runctl.v1.WorkflowService/ListPausedExecutions",
                    workflow_pb2.ListPausedExecutionsRequest(
                        workflow_id=approval, page_size=50
                    ).SerializeToString(),
                ),
            ),
            (
                "ListPausePoints",
                unary(
                    runctl,
                    "/runctl.v1.PausePointService/ListPausePoints",
                    pause_point_pb2.ListPausePointsRequest(page_size=50).SerializeToString(),
                ),
            ),
        ]
        print(f"\na page of 50 with {args.paused:,} paused runs in the database, sequential")
        print(f"  {'call':36} {'p50 ms':>8} {'p99 ms':>8}")
        for name, call in pages:
            await call()
            p50, p99 = await latencies(call, max(20, args.sequential // 20))
            print(f"  {name:36} {p50:8.2f} {p99:8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=1000, help="sequential calls for the latencies")
    parser.add_argument("--paused", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(f"control_rpc: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="runctl-control-") as folder, raw_server() as raw_target:
        workdir = Path(folder)
        db_path = workdir / "runctl.db"
        server = spawn_server(f"sqlite:///{db_path}", workdir, {"RUNCTL_LOG_LEVEL": "WARNING"})
        try:
            finished, approval, paused = seed(server.grpc_target)
            began = time.perf_counter()
            copy_paused(db_path, paused, args.paused)
            print(f"copied paused runs up to {args.paused:,} in {time.perf_counter() - began:.1f} s")
            asyncio.run(measure(raw_target, server.grpc_target, finished, approval, args))
        finally:
            server.process.terminate()
            server.process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
