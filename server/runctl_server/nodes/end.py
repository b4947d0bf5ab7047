"""The `end` node: where a branch of a workflow finishes, optionally naming the run's output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeResult, NodeType


class EndNode(NodeType):
    """Finishes a branch; no edge may leave it."""

    type_name = "end"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "output": ConfigField("template", description="The run's output, rendered from the data context."),
    }
    inline = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        return NodeResult(output=ctx.render(config["output"]) if "output" in config else None)
