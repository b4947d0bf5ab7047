"""What a node sees while it runs: its data context, expression helpers, logs and engine services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runctl_server.engine.expressions import evaluate, render
from runctl_server.engine.model import Run, now
from runctl_server.nodes.spec import Graph, NodeSpec


@dataclass
class Scope:
    """Where a node runs: the top-level graph, or one iteration of a loop body."""

    graph: Graph
    prefix: str = ""
    stack: list[dict[str, Any]] = field(default_factory=list)
    item: Any = None
    loop_key: str | None = None
    parent: Scope | None = None
    # Outputs of nodes completed in this iteration: {"<id>": {"output": ...}}.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return int(self.stack[-1]["index"]) if self.stack else 0


def data_context(run: Run, scope: Scope) -> dict[str, Any]:
    """The JMESPath context: input, nodes.<id>.output, and inside loops item, index, stack."""
    if scope.parent is None:
        return {"input": run.input, "nodes": run.outputs}
    nodes = dict(run.outputs)
    chain: list[Scope] = []
    cursor: Scope | None = scope
    while cursor is not None and cursor.parent is not None:
        chain.append(cursor)
        cursor = cursor.parent
    for level in reversed(chain):
        nodes.update(level.outputs)
    return {
        "input": run.input,
        "nodes": nodes,
        "item": scope.item,
        "index": scope.index,
        "stack": scope.stack,
    }


class NodeRunContext:
    """The NodeContext handed to node types (see nodes/base.py)."""

    def __init__(
        self,
        run: Run,
        scope: Scope,
        node: NodeSpec,
        node_key: str,
        attempt: int,
        services: Mapping[str, Any],
    ) -> None:
        self.run = run
        self.scope = scope
        self.node = node
        self.node_key = node_key
        self.attempt = attempt
        self.execution_id = run.id
        # Stable across attempts and restarts, so receivers can deduplicate a repeated call.
        self.idempotency_key = f"{run.id}/{node_key}"
        self.trace = run.trace_logs
        self._services = services
        self._data: dict[str, Any] | None = None
        self.logs: list[dict[str, Any]] = []

    @property
    def data(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = data_context(self.run, self.scope)
        return self._data

    def evaluate(self, expression: str) -> Any:
        return evaluate(expression, self.data)

    def render(self, value: Any) -> Any:
        return render(value, self.data)

    def log(self, message: str, level: str = "info", **details: Any) -> None:
        self.logs.append({"time": now(), "level": level, "message": message, "details": details})

    def service(self, name: str) -> Any:
        return self._services[name]
