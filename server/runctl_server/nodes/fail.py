"""The `fail` node: ends the run in error, with a message and a code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeFailure, NodeResult, NodeType


class FailNode(NodeType):
    """Fails the run on purpose (say, on a branch that means the input was bad)."""

    type_name = "fail"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "message": ConfigField("template", description="Why the run failed; may embed {{ expressions }}."),
        "code": ConfigField("string", description="A stable error code for programs to match on."),
    }
    inline = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        message = ctx.render(config["message"]) if "message" in config else f"failed at node {ctx.node.id!r}"
        raise NodeFailure(str(message), code=str(config.get("code") or "FAILED"), retryable=False)
