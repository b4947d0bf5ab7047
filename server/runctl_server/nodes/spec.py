"""The graph of a workflow as the engine and node types see it: nodes, edges, retry policies and loop
bodies. Part of the node plugin API (node types are handed a `NodeSpec`), so it imports nothing of the
engine; engine/definition.py parses and validates documents into it."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing node runs again, and how long to wait in between."""

    max_attempts: int = 1
    backoff_seconds: float = 0.0
    backoff_multiplier: float = 2.0
    max_backoff_seconds: float = 300.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (1 is the first run, 2 the first retry)."""
        delay = self.backoff_seconds
        for _ in range(attempt - 2):
            delay *= self.backoff_multiplier
            if delay >= self.max_backoff_seconds:
                break
        return 0.0 if attempt <= 1 else min(delay, self.max_backoff_seconds)


@dataclass(frozen=True)
class NodeSpec:
    """One node of a workflow as written: its type, config and run options, and a loop's body."""

    id: str
    type: str
    name: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    breakpoint: bool = False
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float | None = None
    # Worker queue of a task node (from the node or, for `task`, its config); None for built-ins.
    queue: str | None = None
    body: Graph | None = None


@dataclass(frozen=True)
class EdgeSpec:
    """A directed edge; `when` names the branch of the source node that takes it."""

    source: str
    target: str
    when: str | None = None


@dataclass(frozen=True)
class Graph:
    """Nodes and edges of one level (the workflow, or a loop body), with lookups computed once.

    Construct it only from a valid graph (parse_definition does): an edge naming a missing node or a
    cycle raises ValueError.
    """

    nodes: tuple[NodeSpec, ...]
    edges: tuple[EdgeSpec, ...] = ()
    by_id: Mapping[str, NodeSpec] = field(init=False, repr=False, compare=False)
    incoming: Mapping[str, tuple[EdgeSpec, ...]] = field(init=False, repr=False, compare=False)
    outgoing: Mapping[str, tuple[EdgeSpec, ...]] = field(init=False, repr=False, compare=False)
    # Nodes without incoming edges, in document order: where this level starts.
    entry_ids: tuple[str, ...] = field(init=False, repr=False, compare=False)
    topological_order: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        edges = tuple(self.edges)
        by_id = {node.id: node for node in nodes}
        if len(by_id) != len(nodes):
            raise ValueError("node ids of a graph must be unique")
        incoming: dict[str, list[EdgeSpec]] = {node.id: [] for node in nodes}
        outgoing: dict[str, list[EdgeSpec]] = {node.id: [] for node in nodes}
        for edge in edges:
            if edge.source not in by_id or edge.target not in by_id:
                raise ValueError(f"edge {edge.source} -> {edge.target} names a node outside this graph")
            outgoing[edge.source].append(edge)
            incoming[edge.target].append(edge)
        entry_ids = tuple(node.id for node in nodes if not incoming[node.id])
        # Kahn's algorithm, taking ready nodes in document order so the order is stable.
        remaining = {node_id: len(edges_in) for node_id, edges_in in incoming.items()}
        ready = deque(entry_ids)
        order: list[str] = []
        while ready:
            node_id = ready.popleft()
            order.append(node_id)
            for edge in outgoing[node_id]:
                remaining[edge.target] -= 1
                if remaining[edge.target] == 0:
                    ready.append(edge.target)
        if len(order) != len(nodes):
            raise ValueError("graph has a cycle")
        set_ = object.__setattr__
        set_(self, "nodes", nodes)
        set_(self, "edges", edges)
        set_(self, "by_id", by_id)
        set_(self, "incoming", {key: tuple(value) for key, value in incoming.items()})
        set_(self, "outgoing", {key: tuple(value) for key, value in outgoing.items()})
        set_(self, "entry_ids", entry_ids)
        set_(self, "topological_order", tuple(order))
