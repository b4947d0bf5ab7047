"""Watchers in two groups, their clients spread over processes: commit-to-delivery latency of each.

Starts `runctl serve` (subprocess, temp SQLite) and starts `--runs` (1,000) runs of a workflow that
waits at a wait node, then 8 transforms. Then `--processes` client processes open, between them, one
WatchExecution watcher per run (each following its own run) and `--streams` (100) StreamEvents watchers
following everything. Once every watcher is open, the runs are resumed at `--rate` (50) per second,
each producing about 20 events. Each event's latency is from its timestamp (taken as the engine makes
it, just before the commit) to its arrival at a watcher. It prints, per group, events delivered, p50
and p99 (target: p99 at most 50 ms for both), and the server's CPU per delivered event; it checks that
every stream watcher got every event once and in order, and every run watcher every event of its run.

    .venv/bin/python bench/watch_groups.py [--runs 1000] [--streams 100] [--rate 50] [--processes 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from engine_throughput import percentile, process_cpu_seconds, spawn_server, struct, wait_serving
from google.protobuf import json_format

from runctl.v1 import (
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

STREAMS_PER_CHANNEL = 100


def waiting_workflow() -> workflow_pb2.WorkflowDefinition:
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "hold", "type": "wait"},
        *({"id": f"t{i}", "type": "transform", "config": {"output": "{{ input.n }}"}} for i in range(8)),
        {"id": "end", "type": "end"},
    ]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    document = {"name": "watched", "nodes": nodes, "edges": edges}
    return json_format.ParseDict(document, workflow_pb2.WorkflowDefinition())


# -- a client process ------------------------------------------------------------------------------------


async def client(target: str, runs: list[str], streams: int) -> dict[str, Any]:
    """Open the watchers, say "ready", follow until told "stop" on stdin; answer what was seen."""
    run_latencies: list[float] = []
    stream_latencies: list[float] = []
    run_events: dict[str, int] = dict.fromkeys(runs, 0)
    stream_seen: list[list[int]] = [[] for _ in range(streams)]
    opened = 0
    all_open = asyncio.Event()
    total = len(runs) + streams

    def mark_open() -> None:
        nonlocal opened
        opened += 1
        if opened == total:
            all_open.set()

    async def watch_run(channel: grpc.aio.Channel, run: str) -> None:
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        request = execution_pb2.WatchExecutionRequest(
            execution_id=run, view=execution_pb2.EXECUTION_VIEW_BASIC
        )
        async for message in stub.WatchExecution(request):
            kind = message.WhichOneof("kind")
            if kind == "snapshot":
                mark_open()
                if message.snapshot.status in (common_pb2.EXECUTION_STATUS_COMPLETED,):
                    return
            elif kind == "events":
                now = time.time()
                for event in message.events.events:
                    run_latencies.append(now - event.time.ToNanoseconds() / 1e9)
                    run_events[run] += 1
                    if event.type == event_pb2.EVENT_TYPE_EXECUTION_COMPLETED:
                        return

    async def watch_stream(channel: grpc.aio.Channel, index: int) -> None:
        stub = event_pb2_grpc.EventServiceStub(channel)
        call = stub.StreamEvents(event_pb2.StreamEventsRequest())
        # A stream with no replay sends nothing until the first event: it is open once the call is.
        await call.initial_metadata()
        mark_open()
        async for message in call:
            if message.WhichOneof("kind") != "events":
                continue
            now = time.time()
            for event in message.events.events:
                stream_latencies.append(now - event.time.ToNanoseconds() / 1e9)
                stream_seen[index].append(event.sequence)

    channels = [grpc.aio.insecure_channel(target) for _ in range((total // STREAMS_PER_CHANNEL) + 1)]
    tasks = [
        *(asyncio.create_task(watch_run(channels[i % len(channels)], run)) for i, run in enumerate(runs)),
        *(asyncio.create_task(watch_stream(channels[i % len(channels)], i)) for i in range(streams)),
    ]
    await asyncio.wait_for(all_open.wait(), 300)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return {
        "run_latencies": run_latencies,
        "stream_latencies": stream_latencies,
        "run_events": run_events,
        "stream_first_last_count": [
            [seen[0] if seen else 0, seen[-1] if seen else 0, len(seen), seen == sorted(set(seen))]
            for seen in stream_seen
        ],
    }


# -- the parent ----------------------------------------------------------------------------------------


async def prepare(target: str, runs: int) -> tuple[list[str], list[str]]:
    """`runs` runs waiting at their wait node; answers their ids and their pause points."""
    async with grpc.aio.insecure_channel(target) as channel:
        workflows = workflow_pb2_grpc.WorkflowServiceStub(channel)
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        points = pause_point_pb2_grpc.PausePointServiceStub(channel)
        workflow = await workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=waiting_workflow()), timeout=30
        )
        limit = asyncio.Semaphore(32)

        async def start(n: int) -> str:
            async with limit:
                request = execution_pb2.StartExecutionRequest(
                    workflow_id=workflow.workflow.id, input=struct({"n": n})
                )
                return str((await executions.StartExecution(request, timeout=60)).execution.id)

        ids = await asyncio.gather(*(start(n) for n in range(runs)))
        contexts: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while len(contexts) < runs and time.monotonic() < deadline:
            token = ""
            while True:
                page = await points.ListPausePoints(
                    pause_point_pb2.ListPausePointsRequest(
                        workflow_id=workflow.workflow.id,
                        resume_statuses=[pause_point_pb2.RESUME_STATUS_PAUSED],
                        page_size=100,
                        page_token=token,
                    ),
                    timeout=30,
                )
                contexts.update((p.execution_id, p.context_id) for p in page.pause_points)
                token = page.next_page_token
                if not token:
                    break
        if len(contexts) < runs:
            raise RuntimeError(f"only {len(contexts)} of {runs} runs reached their wait node")
        return list(ids), [contexts[run] for run in ids]


async def resume_all(target: str, contexts: list[str], rate: float) -> tuple[int, int]:
    """Resume every run at `rate` per second and wait until all completed; answers the event log's
    head before and after."""
    async with grpc.aio.insecure_channel(target) as channel:
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        events = event_pb2_grpc.EventServiceStub(channel)
        before = (await events.ListEvents(event_pb2.ListEventsRequest(page_size=1), timeout=30)).head_sequence
        began = time.monotonic()
        pending = []
        for index, context in enumerate(contexts):
            await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
            request = execution_pb2.ResumePausePointRequest(context_id=context)
            pending.append(asyncio.ensure_future(executions.ResumePausePoint(request, timeout=60)))
        await asyncio.gather(*pending)
        while True:
            active = await executions.ListExecutions(
                execution_pb2.ListExecutionsRequest(
                    statuses=[common_pb2.EXECUTION_STATUS_RUNNING, common_pb2.EXECUTION_STATUS_PAUSED],
                    page_size=1,
                ),
                timeout=30,
            )
            if active.total_size == 0:
                break
            await asyncio.sleep(0.1)
        after = (await events.ListEvents(event_pb2.ListEventsRequest(page_size=1), timeout=30)).head_sequence
        return int(before), int(after)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=1000, help="runs, each with its own WatchExecution watcher"
    )
    parser.add_argument("--streams", type=int, default=100, help="StreamEvents watchers following everything")
    parser.add_argument("--rate", type=float, default=50.0, help="runs resumed per second")
    parser.add_argument(
        "--processes", type=int, default=4, help="client processes the watchers are spread over"
    )
    parser.add_argument(
        "--client", nargs=3, metavar=("TARGET", "RUNS_FILE", "STREAMS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.client:
        target, runs_file, streams = args.client
        result = asyncio.run(client(target, json.loads(Path(runs_file).read_text()), int(streams)))
        print(json.dumps(result), flush=True)
        return 0

    with tempfile.TemporaryDirectory(prefix="runctl-bench-") as folder:
        workdir = Path(folder)
        with spawn_server(f"sqlite:///{workdir / 'runctl.db'}", workdir) as server:
            asyncio.run(wait_serving(server))
            runs, contexts = asyncio.run(prepare(server.target, args.runs))
            clients = []
            for index in range(args.processes):
                share = runs[index :: args.processes]
                streams = args.streams // args.processes + (index < args.streams % args.processes)
                runs_file = workdir / f"runs-{index}.json"
                runs_file.write_text(json.dumps(share))
                clients.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--client", server.target, str(runs_file), str(streams)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            for process in clients:
                assert process.stdout is not None
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError("a client process did not open its watchers")
            cpu_before = process_cpu_seconds(server.process.pid) or 0.0
            began = time.monotonic()
            before, after = asyncio.run(resume_all(server.target, contexts, args.rate))
            time.sleep(2.0)  # the last deliveries
            wall = time.monotonic() - began
            cpu = (process_cpu_seconds(server.process.pid) or 0.0) - cpu_before
            results = []
            for process in clients:
                output, _ = process.communicate("stop\n", timeout=120)
                results.append(json.loads(output.strip().splitlines()[-1]))
    return report(args, results, before, after, wall, cpu)


def report(
    args: argparse.Namespace, results: list[dict[str, Any]], before: int, after: int, wall: float, cpu: float
) -> int:
    run_latencies = sorted(x for r in results for x in r["run_latencies"])
    stream_latencies = sorted(x for r in results for x in r["stream_latencies"])
    expected = after - before
    streams = [s for r in results for s in r["stream_first_last_count"]]
    complete_streams = all(
        last == after and count >= expected and in_order for _first, last, count, in_order in streams
    )
    per_run = [n for r in results for n in r["run_events"].values()]
    delivered = len(run_latencies) + len(stream_latencies)
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(
        f"{args.runs} runs resumed at {args.rate:g}/s, {expected:,} events committed;"
        f" watchers in {args.processes} client processes"
    )
    for name, latencies in (
        (f"WatchExecution x {args.runs} (each its own run)", run_latencies),
        (f"StreamEvents x {args.streams} (everything)", stream_latencies),
    ):
        p99 = percentile(latencies, 0.99) * 1000
        print(
            f"  {name:42} {len(latencies):>9,} events  p50 {percentile(latencies, 0.5) * 1000:6.1f} ms"
            f"  p99 {p99:6.1f} ms  ({'MET' if p99 <= 50 else 'NOT MET'}: p99 <= 50 ms)"
        )
    print(
        f"  server CPU {cpu:.1f} s over {wall:.1f} s:"
        f" {cpu / max(delivered, 1) * 1e6:.1f} us per delivered event"
    )
    print(f"  events per run watcher: min {min(per_run, default=0)}, max {max(per_run, default=0)}")
    print(
        "  every stream watcher got every event, in order, once"
        if complete_streams
        else "  STREAM EVENTS MISSING"
    )
    return 0 if complete_streams and min(per_run, default=0) > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
