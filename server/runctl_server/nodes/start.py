"""The `start` node: where a workflow begins. Exactly one per workflow, at the top level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeResult, NodeType


class StartNode(NodeType):
    """Where a run begins; its output is the run's input."""

    type_name = "start"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {}
    inline = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        # The start node hands the run input on, so `nodes.start.output` is the input.
        return NodeResult(output=ctx.data["input"])
