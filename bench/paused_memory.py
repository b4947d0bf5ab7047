"""Paused runs and server memory: the server's resident memory as paused runs pile up.

Starts `runctl serve` as a subprocess (a temp SQLite file unless `--db-url` says otherwise), creates a
workflow start -> approval -> end, and starts `--runs` runs of it with `--concurrency` calls in flight.
Every run pauses at its approval and stays paused. At each tenth of the way the script waits until the
server has paused every run started so far, and reads the server's resident set size (VmRSS) from
/proc. A paused run is rows, not memory (engine/scheduler.py unloads it), so the figure should stay
flat. At the end it resumes a sample of the runs and checks that each completes. Run from the
repository root:

    .venv/bin/python bench/paused_memory.py [--runs 100000] [--concurrency 64] [--db-url URL]

DESIGN.md's target is a million paused runs with flat server memory (`--runs 1000000` takes a while).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

import grpc
from engine_throughput import database, percentile, redact, spawn_server, wait_serving
from google.protobuf import json_format

from runctl.v1 import common_pb2, execution_pb2, execution_pb2_grpc, workflow_pb2, workflow_pb2_grpc

CHECKPOINTS = 10
SAMPLE = 100  # runs resumed at the end to show paused runs still work


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


async def create_workflow(channel: grpc.aio.Channel) -> str:
    document = {
        "name": "paused",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "ask", "type": "approval", "config": {"title": "Go on?"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "ask"}, {"from": "ask", "to": "end"}],
    }
    request = workflow_pb2.CreateWorkflowRequest(
        definition=json_format.ParseDict(document, workflow_pb2.WorkflowDefinition())
    )
    reply = await workflow_pb2_grpc.WorkflowServiceStub(channel).CreateWorkflow(request, timeout=30)
    return str(reply.workflow.id)


async def paused_count(executions: execution_pb2_grpc.ExecutionServiceAsyncStub, workflow_id: str) -> int:
    request = execution_pb2.ListExecutionsRequest(
        workflow_id=workflow_id,
        statuses=[common_pb2.EXECUTION_STATUS_PAUSED],
        page_size=1,
        view=execution_pb2.EXECUTION_VIEW_BASIC,
    )
    return int((await executions.ListExecutions(request, timeout=60)).total_size)


async def start_many(
    executions: execution_pb2_grpc.ExecutionServiceAsyncStub, workflow_id: str, count: int, concurrency: int
) -> tuple[list[str], list[float]]:
    ids: list[str] = []
    latencies: list[float] = []
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            began = time.perf_counter()
            reply = await executions.StartExecution(
                execution_pb2.StartExecutionRequest(workflow_id=workflow_id), timeout=120
            )
            latencies.append(time.perf_counter() - began)
            ids.append(reply.execution.id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids, latencies


async def run(args: argparse.Namespace, target: str, pid: int) -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        workflow_id = await create_workflow(channel)
        print(f"server RSS before any run: {rss_mib(pid):.1f} MiB")
        print(f"{'paused runs':>12} {'server RSS':>12} {'starts/s':>10} {'start p99':>10}")
        started: list[str] = []
        step = max(1, args.runs // CHECKPOINTS)
        figures: list[float] = []
        while len(started) < args.runs:
            batch = min(step, args.runs - len(started))
            began = time.monotonic()
            ids, latencies = await start_many(executions, workflow_id, batch, args.concurrency)
            started += ids
            while await paused_count(executions, workflow_id) < len(started):  # noqa: ASYNC110 (polls the server)
                await asyncio.sleep(0.2)
            rate = batch / (time.monotonic() - began)
            figures.append(rss_mib(pid))
            print(
                f"{len(started):>12,} {figures[-1]:>8.1f} MiB {rate:>10,.0f}"
                f" {percentile(latencies, 0.99) * 1000:>7.1f} ms",
                flush=True,
            )
        growth = figures[-1] - figures[0]
        per_thousand = growth / max(1, (len(started) - step) / 1000)
        print(
            f"RSS from the first checkpoint to the last: {growth:+.1f} MiB"
            f" ({per_thousand * 1024:+.1f} KiB per 1,000 paused runs)"
        )

        sample = random.sample(started, min(SAMPLE, len(started)))
        for execution_id in sample:
            run_ = await executions.GetExecution(
                execution_pb2.GetExecutionRequest(execution_id=execution_id), timeout=60
            )
            context_id = run_.execution.pause_points[0].context_id
            await executions.ResumePausePoint(
                execution_pb2.ResumePausePointRequest(context_id=context_id), timeout=60
            )
        deadline = time.monotonic() + 120
        pending = set(sample)
        while pending and time.monotonic() < deadline:
            for execution_id in list(pending):
                reply = await executions.GetExecution(
                    execution_pb2.GetExecutionRequest(
                        execution_id=execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC
                    ),
                    timeout=60,
                )
                if reply.execution.status == common_pb2.EXECUTION_STATUS_COMPLETED:
                    pending.discard(execution_id)
            await asyncio.sleep(0.1)
        print(f"resumed {len(sample)} paused runs: {len(sample) - len(pending)} completed")
        return not pending


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--db-url", default=None, help="default: a temp SQLite file")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="runctl-bench-") as workdir,
        database(args.db_url, Path(workdir)) as db_url,
    ):
        print(f"host: {os.cpu_count()} CPUs; database {redact(db_url)}; {args.runs:,} runs")
        with spawn_server(db_url, Path(workdir)) as server:
            asyncio.run(wait_serving(server))
            ok = asyncio.run(run(args, server.target, server.process.pid))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
