"""The `breakpoint` node: pauses the run there until an operator continues, skips or stops it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeResult, NodeType


class BreakpointNode(NodeType):
    """A pause point with no config; any node can also pause by carrying `breakpoint: true`."""

    type_name = "breakpoint"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {}
    inline = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        # The scheduler pauses before the node; once continued there is nothing left to do.
        return NodeResult()
