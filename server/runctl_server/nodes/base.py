"""The node plugin API: the interface every node type implements, the declarative description of its
config, and what a node sees and answers. A plugin imports only this module; it imports nothing of the
engine (an import-linter contract in pyproject.toml keeps it so)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from runctl_server.nodes.spec import EdgeSpec, Graph, NodeSpec, RetryPolicy

__all__ = [
    "MAX_WAIT_SECONDS",
    "ChildRun",
    "ConfigField",
    "ConfigKind",
    "EdgeSpec",
    "Graph",
    "NodeContext",
    "NodeFailure",
    "NodeResult",
    "NodeSpec",
    "NodeType",
    "PausePoint",
    "RetryPolicy",
    "Suspend",
    "WaitUntil",
    "WorkerTask",
]

# What a config value must be. "expression" is a JMESPath expression; "template" is any JSON value whose
# strings may embed {{ expression }}; "any" is any JSON value.
ConfigKind = Literal[
    "string", "number", "integer", "boolean", "expression", "template", "object", "array", "any"
]


# The longest a node may wait: a delay, a wait or approval timeout, a date to wait until. Larger values
# are refused when a definition is sent, so no stored time is ever out of the range reads can show.
MAX_WAIT_SECONDS = 10 * 366 * 24 * 3600.0


@dataclass(frozen=True)
class ConfigField:
    """One key of a node's `config`: its kind, whether it is required, and simple bounds."""

    kind: ConfigKind
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


# The node cannot finish now: the run parks (in the database only) until something resumes it. One of:


@dataclass(frozen=True)
class WaitUntil:
    """Resume the node at `wake_at` (a delay)."""

    wake_at: datetime


@dataclass(frozen=True)
class PausePoint:
    """Open a pause point (wait, approval) that someone answers; `pause` describes it."""

    pause: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerTask:
    """Hand `task` to an external worker, which completes the node."""

    task: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildRun:
    """Start the sub-workflow run `child` describes; the node completes when that run ends."""

    child: Mapping[str, Any] = field(default_factory=dict)


Suspend = WaitUntil | PausePoint | WorkerTask | ChildRun


class NodeFailure(Exception):
    """A node failed. `retryable` False skips the node's retry policy (a `fail` node, a 4xx answer)."""

    def __init__(self, message: str, *, code: str = "NODE_FAILED", retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class NodeResult:
    """What running a node produced: an output and the branch labels taken, or a suspension."""

    output: Any = None
    # Labels of outgoing edges to take (condition: "true"/"false"; switch: a case).
    # None: every unlabeled edge.
    branches: frozenset[str] | None = None
    suspend: Suspend | None = None


class NodeContext(Protocol):
    """What a running node sees. Provided by the engine; nodes never touch storage directly."""

    execution_id: str
    node_key: str
    node: NodeSpec
    attempt: int
    idempotency_key: str
    trace: bool

    @property
    def data(self) -> Mapping[str, Any]:
        """The data context: input, nodes.<id>.output, and inside loops item, index, stack."""

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JMESPath expression over the data context."""

    def render(self, value: Any) -> Any:
        """Render a template value: strings with {{ expression }} are evaluated, recursively."""

    def log(self, message: str, level: str = "info", **details: Any) -> None:
        """Record a log line for this node (always kept for `log` nodes; else only with trace logs on)."""

    def service(self, name: str) -> Any:
        """An engine-provided service by name (for example the shared HTTP client)."""


class NodeType:
    """Base of every node type. Subclasses set `type_name` and `config_schema` and implement `execute`."""

    type_name: ClassVar[str] = ""
    config_schema: ClassVar[Mapping[str, ConfigField]] = {}
    # Whether unknown config keys are accepted (tasks for external workers take any config).
    open_config: ClassVar[bool] = False
    # True for loops: the node carries a `body` graph.
    has_body: ClassVar[bool] = False
    # Inline nodes are quick and pure: the scheduler runs them within its step, without a task of their own.
    inline: ClassVar[bool] = True

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Checks beyond the schema, as (path inside config, problem) pairs; empty when fine."""
        return []

    def branch_labels(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        """The `when` labels outgoing edges may carry; None means edges from this node take no `when`."""
        return None

    async def execute(self, ctx: NodeContext) -> NodeResult:
        raise NotImplementedError(f"node type {self.type_name!r} has no executor")
