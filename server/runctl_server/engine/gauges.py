"""What the engine reports at scrape time: run counts by state and the due-timer backlog from the
database, and the counters its parts keep as plain integers (leases, takeovers, watchers cut off)."""

from __future__ import annotations

from dataclasses import dataclass

from runctl_server.clock import Clock
from runctl_server.engine.cluster import Cluster
from runctl_server.engine.scheduler import Scheduler
from runctl_server.events.hub import EventHub
from runctl_server.events.relay import EventRelay
from runctl_server.observe.metrics import Sample
from runctl_server.store import executions
from runctl_server.store.reads import Reader
from runctl_server.store.writer import Writer


@dataclass(frozen=True)
class EngineGauges:
    """The engine parts a scrape reads; `cluster` only with replicas. `clock` is the one the timers
    wake by, so a timer counts as due exactly when the engine would fire it."""

    reader: Reader
    clock: Clock
    scheduler: Scheduler
    hub: EventHub
    writer: Writer
    relay: EventRelay
    cluster: Cluster | None

    def samples(self) -> list[Sample]:
        """Blocking (two small indexed reads): called off the event loop, once per scrape. While the
        database does not answer, only the in-memory values are reported (and `runctl_database_up` is
        0)."""
        try:
            samples = _database_samples(self.reader, self.clock.now())
            up = 1.0
        except Exception:
            samples, up = [], 0.0
        samples.append(
            Sample("runctl_database_up", "Whether this scrape could read the database.", "gauge", {}, up)
        )
        return samples + _live_samples(self)


def _database_samples(reader: Reader, now: float) -> list[Sample]:
    counts = {"queued": 0, "running": 0, "waiting": 0, "paused": 0}
    # running runs that wait on nothing in-process (timers, workers, children, pause points) are "waiting".
    for count in executions.active_counts(reader):
        state = "waiting" if count.status == "running" and count.parked else count.status
        counts[state] = counts.get(state, 0) + count.n
    due = executions.due_timer_count(reader, now)
    samples = [
        Sample(
            "runctl_runs",
            "Active runs by state (waiting: on timers, workers or children).",
            "gauge",
            {"state": state},
            float(n),
        )
        for state, n in counts.items()
    ]
    samples.append(
        Sample(
            "runctl_due_timers",
            "Timers due now or overdue and not yet fired (the backlog).",
            "gauge",
            {},
            float(due),
        )
    )
    return samples


def _live_samples(parts: EngineGauges) -> list[Sample]:
    """Values kept in memory; cheap."""
    scheduler = parts.scheduler
    samples = [
        Sample(
            "runctl_runs_loaded",
            "Runs this process holds in memory and drives now.",
            "gauge",
            {},
            float(len(scheduler.loaded_ids)),
        ),
        Sample(
            "runctl_stream_subscribers",
            "Open watchers (streams, SSE, Socket.IO) of this process.",
            "gauge",
            {},
            float(parts.hub.subscribers),
        ),
        Sample(
            "runctl_watchers_cut_off_total",
            "Watchers ended for falling too far behind (WATCHER_TOO_SLOW); they resume by cursor.",
            "counter",
            {},
            float(parts.hub.cut_off),
        ),
        Sample(
            "runctl_commits_total",
            "Group commits of the writer.",
            "counter",
            {},
            float(parts.writer.commits),
        ),
    ]
    cluster = parts.cluster
    if cluster is not None:
        samples += [
            Sample(
                "runctl_lease_claims_total",
                "Runs this replica claimed (took the lease of) to drive.",
                "counter",
                {},
                float(scheduler.claims),
            ),
            Sample(
                "runctl_leases_lost_total",
                "Runs this replica stopped driving because another took its lease.",
                "counter",
                {},
                float(scheduler.leases_lost),
            ),
            Sample(
                "runctl_takeovers_total",
                "Runs taken over from replicas that died.",
                "counter",
                {},
                float(cluster.taken_over),
            ),
            Sample(
                "runctl_commits_fenced_total",
                "Changes refused at commit because the run's lease had moved to another replica.",
                "counter",
                {},
                float(parts.writer.fenced_out),
            ),
            Sample(
                "runctl_heartbeats_missed_total",
                "Lease heartbeats of this replica that failed.",
                "counter",
                {},
                float(cluster.heartbeats_missed),
            ),
            Sample(
                "runctl_events_read_back_total",
                "Events this replica read from the log because another replica committed them (only"
                " while it has watchers or cached views those events could change).",
                "counter",
                {},
                float(parts.relay.read_from_log),
            ),
            Sample(
                "runctl_messages_forwarded_total",
                "Messages for runs driven by another replica, sent through the run inbox.",
                "counter",
                {},
                float(scheduler.forwarded),
            ),
        ]
    return samples
