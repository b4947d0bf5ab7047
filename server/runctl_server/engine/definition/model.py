"""The domain model of a workflow document: a validated Definition (its graph, layout and normalized
document), and the limits every document is held to. validation.py builds it; loading.py reads files."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runctl_server.nodes.spec import Graph, NodeSpec

DEFAULT_NAME = "Untitled workflow"
NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_NAME_LENGTH = 200
MAX_LOOP_DEPTH = 16
# Deepest nesting of JSON values accepted in a config, and most values in one loaded document: a few
# lines of YAML aliases can otherwise expand into billions of values.
MAX_VALUE_DEPTH = 64
MAX_DOCUMENT_VALUES = 500_000
# Bounds that keep numbers meaningful once they become floats, timedeltas and deadlines.
MAX_SAFE_INTEGER = 2**53
MAX_SECONDS = 10 * 365 * 24 * 3600
MAX_CANVAS = 1_000_000

TOP_KEYS = frozenset({"name", "description", "nodes", "edges", "positions", "width", "height"})
NODE_KEYS = frozenset(
    {"id", "type", "name", "config", "breakpoint", "retry", "timeoutSeconds", "queue", "body"}
)
EDGE_KEYS = frozenset({"from", "to", "when"})
BODY_KEYS = frozenset({"nodes", "edges"})
RETRY_KEYS = frozenset({"maxAttempts", "backoffSeconds", "backoffMultiplier", "maxBackoffSeconds"})
POSITION_KEYS = frozenset({"x", "y"})


@dataclass(frozen=True)
class Definition:
    """A validated workflow: its graph, layout, and the normalized document it was read from."""

    name: str
    description: str
    graph: Graph
    positions: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    width: int = 0
    height: int = 0
    # The normalized JSON document: parse_definition(document) gives back an equal Definition.
    document: dict[str, Any] = field(default_factory=dict)
    _nodes: dict[str, NodeSpec] = field(init=False, repr=False, compare=False)
    _parents: dict[str, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nodes: dict[str, NodeSpec] = {}
        parents: dict[str, str | None] = {}
        pending: list[tuple[Graph, str | None]] = [(self.graph, None)]
        while pending:
            graph, parent = pending.pop()
            for node in graph.nodes:
                nodes[node.id] = node
                parents[node.id] = parent
                if node.body is not None:
                    pending.append((node.body, node.id))
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "_parents", parents)

    def find(self, node_id: str) -> NodeSpec | None:
        """The node with this id, at the top level or in any loop body."""
        return self._nodes.get(node_id)

    def parent_loop(self, node_id: str) -> str | None:
        """The id of the for_each whose body holds this node; None at the top level (or if unknown)."""
        return self._parents.get(node_id)

    def iter_nodes(self) -> Iterator[NodeSpec]:
        """Every node, loop bodies included."""
        return iter(self._nodes.values())
