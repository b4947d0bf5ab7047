"""The `wait` node: parks the run until it is resumed (by API or webhook) with data, or times out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from runctl_server.nodes.base import (
    MAX_WAIT_SECONDS,
    ConfigField,
    NodeContext,
    NodeResult,
    NodeType,
    PausePoint,
)

ON_TIMEOUT = ("fail", "continue", "branch")
TIMEOUT_LABEL = "timeout"


def timeout_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The schema checks that timeoutSeconds is a number; a pause point also needs it positive."""
    timeout = config.get("timeoutSeconds")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout <= 0:
        return [("timeoutSeconds", "must be greater than 0")]
    return []


class WaitNode(NodeType):
    """Waits for a resume call; its output is the data the call carried."""

    type_name = "wait"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "timeoutSeconds": ConfigField(
            "number", maximum=MAX_WAIT_SECONDS, description="Give up waiting after this many seconds."
        ),
        "onTimeout": ConfigField(
            "string",
            choices=ON_TIMEOUT,
            description='On timeout: "fail" the node (default), "continue" as if resumed with no data, '
            'or "branch" along the edges marked when: "timeout".',
        ),
        "display": ConfigField("template", description="Data shown to whoever resumes the run."),
    }
    inline = True

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return timeout_problems(config)

    def branch_labels(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({TIMEOUT_LABEL})

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        pause = {
            "kind": "wait",
            "timeoutSeconds": config.get("timeoutSeconds"),
            "onTimeout": config.get("onTimeout", "fail"),
            "display": ctx.render(config["display"]) if "display" in config else None,
        }
        return NodeResult(suspend=PausePoint(pause=pause))
