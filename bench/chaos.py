"""Chaos: three replicas on one PostgreSQL database, one SIGKILLed every 20 s, runs started all along.

Starts `runctl serve` three times (tests/replicas.py) on a throwaway database made as the test suite makes
them (tests/postgres.py: the PostgreSQL server on 127.0.0.1:5432, else a throwaway cluster), and a
recording HTTP server for the http nodes to call. For
`--minutes` it keeps starting runs (`--rate` per second, round robin over the live replicas, each start
retried elsewhere with the same request_id if its replica dies under it) of three workflows mixing
delays, http calls and log nodes, while every `--kill-every` seconds a random replica is SIGKILLed and
restarted at once. Then it stops the load, waits for the runs to end, and reads the event log:

    runs started        StartExecution answered with a run id
    completed           runs with an EXECUTION_COMPLETED event
    completed twice     runs with more than one terminal event
    lost                started runs with no terminal event once the cluster drained
    nodes completed twice   node keys with more than one NODE_COMPLETED event

The goal (issue 12) is started == completed, completed twice == 0, lost == 0; the script exits 1 when
it is not met. Run from the repository root:

    .venv/bin/python bench/chaos.py                    # 10 minutes
    .venv/bin/python bench/chaos.py --minutes 1 --rate 20 --lease-ttl 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))  # for tests.replicas, when run as `python bench/chaos.py`

from tests.postgres import temporary_database  # noqa: E402
from tests.replicas import (  # noqa: E402
    Cluster,
    RecordingHttpServer,
    RunAudit,
    audit,
    delay,
    http_node,
    linear,
    log,
)

KINDS = ("timer", "http", "mixed")
PROGRESS_SECONDS = 60.0


def documents(url: str) -> dict[str, dict[str, Any]]:
    """The three workflows of the mix: a durable timer, an http call, and both with two calls."""
    return {
        "timer": linear(delay("nap", 2.0), log("note"), name="chaos timer"),
        "http": linear(http_node("call", url, wait=1.0), log("note"), name="chaos http"),
        "mixed": linear(
            http_node("first", url, wait=0.2),
            delay("nap", 1.0),
            log("note"),
            http_node("second", url, wait=0.2),
            name="chaos mixed",
        ),
    }


@dataclass
class Load:
    """The runs started, and how the starting went."""

    started: dict[str, str] = field(default_factory=dict)  # run id -> its tag
    start_failures: list[str] = field(default_factory=list)  # tags no replica would start
    retried_starts: int = 0

    def run(self, cluster: Cluster, workflows: dict[str, str], rate: float, until: float) -> None:
        """Start runs at `rate` per second until the monotonic time `until`."""
        n = 0
        next_at = time.monotonic()
        while next_at < until:
            kind = KINDS[n % len(KINDS)]
            self.start(cluster, workflows[kind], f"{kind}-{n}")
            n += 1
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self, cluster: Cluster, workflow_id: str, tag: str) -> None:
        tried: list[int] = []
        for _ in range(2 * len(cluster)):
            try:
                target = cluster.next_live(exclude=tried if len(tried) < len(cluster) else ())
            except RuntimeError:
                time.sleep(0.2)  # every replica is down or restarting
                continue
            try:
                execution = cluster.client(target).start(
                    workflow_id=workflow_id, input={"tag": tag}, request_id=f"chaos-{tag}"
                )
            except (grpc.RpcError, ValueError):  # ValueError: its channel was closed by a kill
                tried.append(target)
                self.retried_starts += 1
                time.sleep(0.05)
                continue
            self.started[execution.id] = tag
            return
        self.start_failures.append(tag)


@dataclass
class Chaos:
    """The kills: which replica, when, and how long its restart took."""

    kills: list[tuple[float, int, float]] = field(default_factory=list)  # at (s), replica, restart (s)
    error: BaseException | None = None

    def run(self, cluster: Cluster, every: float, until: float, rng: random.Random, began: float) -> None:
        try:
            next_kill = time.monotonic() + every
            while True:
                time.sleep(max(0.0, min(next_kill, until) - time.monotonic()))
                if time.monotonic() >= until:
                    return
                victim = rng.choice([r.index for r in cluster.replicas if r.running])
                at = time.monotonic() - began
                cluster.kill(victim)
                restarting = time.monotonic()
                cluster.restart(victim)
                self.kills.append((at, victim, time.monotonic() - restarting))
                next_kill += every
        except BaseException as exc:  # reported at the end; the load goes on
            self.error = exc


def drain(cluster: Cluster, runs: list[str], timeout: float) -> dict[str, RunAudit]:
    """Wait until every run ended (or `timeout`); answers the final audit."""
    deadline = time.monotonic() + timeout
    while True:
        audits = audit(cluster.db_url, runs, children=False)
        waiting = sum(1 for record in audits.values() if not record.ended)
        if not waiting or time.monotonic() > deadline:
            return audits
        print(f"  draining: {waiting} runs not ended yet", flush=True)
        time.sleep(2.0)


def report(
    args: argparse.Namespace,
    load: Load,
    chaos: Chaos,
    audits: dict[str, RunAudit],
    http: RecordingHttpServer,
    wall: float,
) -> bool:
    """Print the figures; answers whether the goal is met."""
    started = len(load.started)
    completed = sum(1 for record in audits.values() if record.completed)
    twice = sum(1 for record in audits.values() if record.ended_twice)
    lost = sum(1 for record in audits.values() if not record.ended)
    other_end = sum(1 for record in audits.values() if record.ended and not record.completed)
    node_twice = Counter[str]()
    for record in audits.values():
        node_twice.update({key: 1 for key in record.nodes_completed_twice})
    runs_with_node_twice = sum(1 for record in audits.values() if record.nodes_completed_twice)
    sent = http.keys_by_node()
    requests = sum(len(keys) for keys in sent.values())
    many_keys = sum(1 for keys in sent.values() if len(set(keys)) > 1)
    restarts = [seconds for _, _, seconds in chaos.kills]
    by_replica = Counter(victim for _, victim, _ in chaos.kills)
    met = started == completed and twice == 0 and lost == 0 and not load.start_failures
    ttl = f"{args.lease_ttl:g} s" if args.lease_ttl is not None else "the server's default"
    rows = [
        (
            "runs started",
            f"{started:,} ({started / wall:.1f}/s; {len(load.start_failures)} starts failed,"
            f" {load.retried_starts} start calls retried on another replica)",
        ),
        ("completed", f"{completed:,}"),
        ("completed twice", f"{twice:,}"),
        ("ended otherwise", f"{other_end:,} (failed or stopped)"),
        ("lost", f"{lost:,} (started, no terminal event after draining)"),
        (
            "nodes completed twice",
            f"{sum(node_twice.values()):,} in {runs_with_node_twice:,} runs"
            + (f" ({', '.join(f'{k} x{n}' for k, n in node_twice.most_common(4))})" if node_twice else ""),
        ),
        ("http requests", f"{requests:,} ({requests - len(sent):,} repeats, {many_keys} nodes with >1 key)"),
        (
            "kills",
            f"{len(chaos.kills)} (by replica {dict(sorted(by_replica.items()))}); restart"
            + (f" p50 {statistics.median(restarts):.1f} s, max {max(restarts):.1f} s" if restarts else " -"),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    print(
        f"runctl chaos: {args.replicas} replicas, {wall / 60:.1f} min, a replica SIGKILLed every"
        f" {args.kill_every:g} s, lease TTL {ttl}"
    )
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    verdict = "MET" if met else "NOT MET"
    print(f"  goal (started == completed, completed twice == 0, lost == 0): {verdict}")
    if chaos.error is not None:
        print(f"  the chaos thread stopped early: {chaos.error!r}", file=sys.stderr)
    return met


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to start runs and kill (10)")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills (20)")
    parser.add_argument("--rate", type=float, default=10.0, help="runs started per second (10)")
    parser.add_argument("--replicas", type=int, default=3, help="replicas (3)")
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=None,
        help="RUNCTL_LEASE_TTL_SECONDS for the replicas (default: the server's own default)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the choice of victims")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the replicas' logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.kill_every <= 0 or args.rate <= 0 or args.replicas < 2:
        parser.error("--minutes, --kill-every and --rate must be > 0, --replicas >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="runctl-chaos-") as tmp:
        workdir = args.workdir or Path(tmp)
        with (
            temporary_database() as db_url,
            RecordingHttpServer() as http,
            Cluster(db_url, workdir, args.replicas, lease_ttl=args.lease_ttl, log_level="WARNING") as cluster,
        ):
            cluster.start()
            print(
                f"{args.replicas} replicas up on {db_url.rpartition('/')[2]}; logs in {workdir}", flush=True
            )
            client = cluster.client(0)
            workflows = {kind: client.create_workflow(doc).id for kind, doc in documents(http.url).items()}
            load, chaos = Load(), Chaos()
            began = time.monotonic()
            until = began + args.minutes * 60
            killer = threading.Thread(
                target=chaos.run, args=(cluster, args.kill_every, until, rng, began), daemon=True
            )
            killer.start()
            loader = threading.Thread(
                target=load.run, args=(cluster, workflows, args.rate, until), daemon=True
            )
            loader.start()
            while loader.is_alive():
                loader.join(PROGRESS_SECONDS)
                print(
                    f"  {time.monotonic() - began:5.0f} s: {len(load.started):,} runs started,"
                    f" {len(chaos.kills)} kills",
                    flush=True,
                )
            killer.join(120)
            wall = time.monotonic() - began
            for replica in cluster.replicas:  # a kill that raced the end leaves no replica down
                if not replica.running:
                    cluster.restart(replica.index)
            ttl = args.lease_ttl if args.lease_ttl is not None else 10.0
            audits = drain(cluster, list(load.started), timeout=max(60.0, 6 * ttl))
            met = report(args, load, chaos, audits, http, wall)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
