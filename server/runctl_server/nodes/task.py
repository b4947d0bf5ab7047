"""The `task` node: work handed to external workers, in any language, that poll its queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeFailure, NodeResult, NodeType, WorkerTask


class TaskNode(NodeType):
    """A task for a worker; the config is passed through as-is, so any key is accepted.

    A node of a type that is not built in (say `navigate`) is run the same way, on the node's queue.
    """

    type_name = "task"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "queue": ConfigField("string", description="The queue workers poll, if the node sets no queue."),
        "heartbeatTimeoutSeconds": ConfigField(
            "number",
            minimum=0.5,
            description="How long a worker may go without a heartbeat before the task is dispatched again"
            " (default 30).",
        ),
    }
    open_config = True
    inline = True
    # The queue may be set on the node or in its config, and check_config sees only the config, so
    # parse_definition reads this flag to require one of the two (and puts it in NodeSpec.queue).
    needs_queue: ClassVar[bool] = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = {key: value for key, value in ctx.node.config.items() if key != "queue"}
        heartbeat = ctx.node.config.get("heartbeatTimeoutSeconds")
        # Node types that are not built in skip the schema check: a bad value must not reach the engine.
        if heartbeat is not None and (
            isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float) or heartbeat <= 0
        ):
            raise NodeFailure(
                "config.heartbeatTimeoutSeconds must be a positive number", code="BAD_CONFIG", retryable=False
            )
        task = {
            "queue": ctx.node.queue or ctx.node.config.get("queue") or ctx.node.type,
            "config": ctx.render(config),
            "input": ctx.data["input"],
            "heartbeatTimeoutSeconds": heartbeat,
        }
        return NodeResult(suspend=WorkerTask(task=task))
