"""The `transform` node: computes a value from the data context with templates and JMESPath."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeResult, NodeType


class TransformNode(NodeType):
    """Its output is `output` rendered over the data context: no code, only expressions."""

    type_name = "transform"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "output": ConfigField(
            "template", required=True, description="Any JSON value; strings may embed {{ expressions }}."
        ),
    }
    inline = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(output=ctx.render(ctx.node.config["output"]))
