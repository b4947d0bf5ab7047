"""Watch fan-out: events/s delivered to N live watchers, and the delay from commit to delivery.

Starts `runctl serve` as a subprocess on a temp SQLite file, opens N `StreamEvents` watchers (one
grpc.aio channel each, in this process), then starts runs of a 10-node workflow at a steady pace and
waits until every watcher has received every event. Each event's latency is the time from its
timestamp (taken when the engine made it, just before its commit) to its arrival at a watcher, so it
includes the commit, the fan-out, gRPC and the client's decoding. Run from the repository root:

    .venv/bin/python bench/watch_fanout.py [--watchers 1000] [--runs 200] [--rate 50]

The script exits non-zero when a watcher missed, repeated or reordered an event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from engine_throughput import create_workflow, percentile, spawn_server, struct, wait_serving
from google.protobuf import duration_pb2

from runctl.v1 import common_pb2, event_pb2, event_pb2_grpc, execution_pb2, execution_pb2_grpc

# The unfinished runs (ListExecutions has no "active" shortcut: a status filter).
ACTIVE = [
    common_pb2.EXECUTION_STATUS_QUEUED,
    common_pb2.EXECUTION_STATUS_RUNNING,
    common_pb2.EXECUTION_STATUS_PAUSED,
]


@dataclass
class Watcher:
    received: int = 0
    last_sequence: int = 0
    in_order: bool = True
    latencies: list[float] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


async def watch(target: str, watcher: Watcher, stop: asyncio.Event, sample_every: int) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = event_pb2_grpc.EventServiceStub(channel)
        request = event_pb2.StreamEventsRequest(heartbeat_interval=duration_pb2.Duration(seconds=1))
        call = stub.StreamEvents(request)
        try:
            async for message in call:
                watcher.opened.set()
                now = time.time()
                for event in message.events.events:
                    if watcher.last_sequence and event.sequence != watcher.last_sequence + 1:
                        watcher.in_order = False
                    watcher.last_sequence = event.sequence
                    watcher.received += 1
                    if watcher.received % sample_every == 0:
                        watcher.latencies.append(now - event.time.ToNanoseconds() / 1e9)
                if stop.is_set():
                    return
        finally:
            call.cancel()


async def start_runs(target: str, runs: int, rate: float) -> int:
    """Start `runs` runs at `rate` per second; answers the sequence of the last event to expect."""
    async with grpc.aio.insecure_channel(target) as channel:
        workflow_id = await create_workflow(channel, "fanout")
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        began = time.monotonic()
        in_flight = asyncio.Semaphore(32)

        async def start(index: int) -> None:
            async with in_flight:
                request = execution_pb2.StartExecutionRequest(
                    workflow_id=workflow_id, input=struct({"n": index})
                )
                await executions.StartExecution(request, timeout=60)

        pending = []
        for index in range(runs):
            await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
            pending.append(asyncio.create_task(start(index)))
        await asyncio.gather(*pending)
        while True:
            active = await executions.ListExecutions(
                execution_pb2.ListExecutionsRequest(statuses=ACTIVE, page_size=1), timeout=30
            )
            if active.total_size == 0:
                break
            await asyncio.sleep(0.1)
        events = event_pb2_grpc.EventServiceStub(channel)
        head = await events.ListEvents(event_pb2.ListEventsRequest(page_size=1), timeout=30)
        return int(head.head_sequence)


async def run(args: argparse.Namespace, target: str) -> bool:
    stop = asyncio.Event()
    watchers = [Watcher() for _ in range(args.watchers)]
    sample_every = max(1, args.watchers // 50)
    tasks = [asyncio.create_task(watch(target, w, stop, sample_every)) for w in watchers]
    await asyncio.wait_for(asyncio.gather(*(w.opened.wait() for w in watchers)), 120)
    began = time.monotonic()
    head = await start_runs(target, args.runs, args.rate)
    deadline = time.monotonic() + 120
    # Polls counters the watcher tasks update; an Event per watcher would cost more than it saves.
    while min(w.last_sequence for w in watchers) < head and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    wall = time.monotonic() - began
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    delivered = sum(w.received for w in watchers)
    latencies = sorted(latency for w in watchers for latency in w.latencies)
    complete = all(w.last_sequence >= head and w.in_order for w in watchers)
    per_watcher = {w.received for w in watchers}
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"watchers: {args.watchers}, runs: {args.runs} started at {args.rate:g}/s")
    print(f"events per watcher: {sorted(per_watcher)}, delivered in all: {delivered:,} in {wall:.1f} s")
    print(f"delivered events/s (all watchers): {delivered / wall:,.0f}")
    print(
        f"commit-to-delivery latency: p50 {percentile(latencies, 0.5) * 1000:.1f} ms,"
        f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms ({len(latencies):,} samples)"
    )
    print("every watcher got every event, in order, once" if complete else "EVENTS MISSING OR OUT OF ORDER")
    return complete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="runs started per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runctl-bench-") as workdir:
        db_url = f"sqlite:///{Path(workdir) / 'runctl.db'}"
        with spawn_server(db_url, Path(workdir)) as server:
            asyncio.run(wait_serving(server))
            ok = asyncio.run(run(args, server.target))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
