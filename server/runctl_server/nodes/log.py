"""The `log` node: records a message in the run's log, always (not only with trace logs on)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeResult, NodeType

LEVELS = ("debug", "info", "warning", "error")


class LogNode(NodeType):
    """Writes `message` at `level`; its output is the rendered message."""

    type_name = "log"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "message": ConfigField("template", required=True, description="May embed {{ expressions }}."),
        "level": ConfigField("string", choices=LEVELS, description='Default "info".'),
    }
    inline = True

    async def execute(self, ctx: NodeContext) -> NodeResult:
        message = ctx.render(ctx.node.config["message"])
        text = message if isinstance(message, str) else json.dumps(message)
        ctx.log(text, str(ctx.node.config.get("level", "info")))
        return NodeResult(output={"message": message})
