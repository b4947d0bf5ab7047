"""Prometheus metrics, one registry per server (tests run several servers in one process).

gRPC metrics carry the names go-grpc-prometheus gave them, so existing gRPC dashboards work unchanged.
Labels are bounded: workflow ids, node types, statuses, methods and route templates, never a run id, a
path with ids in it, or a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Seconds; from a trivial transform (tens of microseconds) to a slow HTTP call.
NODE_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

# Runs started from an inline definition or a file have no workflow id.
INLINE_WORKFLOW = "inline"

# No `*_created` series beside each counter: dashboards do not use them, and they double the scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

_RUN_ENDS = {"EXECUTION_COMPLETED": "completed", "EXECUTION_FAILED": "error", "EXECUTION_STOPPED": "stopped"}


class Metrics:
    """Every metric runctl records as things happen; gauges of state are read at scrape time by the
    collectors registered with `add_collector`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs_started = Counter(
            "runctl_runs_started_total", "Runs that began running, by workflow.", ["workflow"], registry=r
        )
        self.runs_ended = Counter(
            "runctl_runs_ended_total",
            "Runs that ended, by workflow and final status (completed, error, stopped).",
            ["workflow", "status"],
            registry=r,
        )
        self.node_executions = Counter(
            "runctl_node_executions_total",
            "Node executions by node type and outcome (completed, failed, suspended: it now waits).",
            ["node_type", "outcome"],
            registry=r,
        )
        self.node_seconds = Histogram(
            "runctl_node_execution_seconds",
            "How long a node's execution took (not the time it then waited), by node type.",
            ["node_type"],
            buckets=NODE_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "runctl_commit_seconds",
            "Time of one group commit of the writer (many runs' changes in one transaction).",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.grpc_started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            ["grpc_type", "grpc_service", "grpc_method"],
            registry=r,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, regardless of success or failure.",
            ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Response latency (seconds) of gRPC calls that were handled by the server.",
            ["grpc_type", "grpc_service", "grpc_method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "runctl_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "runctl_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.pruned_runs = Counter(
            "runctl_retention_pruned_runs_total", "Ended runs removed by retention.", registry=r
        )
        # Child lookups by label tuple cost a lock and a dict each; the hot path keeps its own.
        self._node_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def node_executed(self, node_type: str, outcome: str, seconds: float) -> None:
        children = self._node_children.get((node_type, outcome))
        if children is None:
            children = (
                self.node_executions.labels(node_type, outcome),
                self.node_seconds.labels(node_type),
            )
            self._node_children[(node_type, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def events_committed(self, events: Iterable[RunEvent]) -> None:
        """Run starts and ends, counted from committed events: a change counts once it is durable."""
        for event in events:
            kind = event.type
            if kind == "EXECUTION_STARTED":
                self.runs_started.labels(event.workflow_id or INLINE_WORKFLOW).inc()
            elif (status := _RUN_ENDS.get(kind)) is not None:
                self.runs_ended.labels(event.workflow_id or INLINE_WORKFLOW, status).inc()


class RunEvent(Protocol):
    """What `events_committed` reads of an event (store.writer.EventRecord has these)."""

    @property
    def type(self) -> str: ...

    @property
    def workflow_id(self) -> str | None: ...


@dataclass
class Sample:
    """A value read at scrape time: (metric name, help, kind, labels, value)."""

    name: str
    documentation: str
    kind: str  # "counter" | "gauge"
    labels: dict[str, str]
    value: float


class ReadAtScrape(Collector):
    """Values that live elsewhere (counts in the database, counters kept as plain ints by the engine),
    read when Prometheus scrapes rather than updated on the hot path."""

    def __init__(self, read: Callable[[], Iterable[Sample]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for sample in self._read():
            family = families.get(sample.name)
            if family is None:
                names = sorted(sample.labels)
                if sample.kind == "counter":
                    family = CounterMetricFamily(
                        sample.name.removesuffix("_total"), sample.documentation, labels=names
                    )
                else:
                    family = GaugeMetricFamily(sample.name, sample.documentation, labels=names)
                families[sample.name] = family
            family.add_metric([sample.labels[name] for name in sorted(sample.labels)], sample.value)
        return list(families.values())

    def describe(self) -> Iterable[Metric]:
        return []  # the names depend on the database's answer; nothing to check at registration
