"""The `subworkflow` node: starts a run of another workflow, by id or by file, and waits for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from runctl_server.nodes.base import ChildRun, ConfigField, NodeContext, NodeResult, NodeType


class SubworkflowNode(NodeType):
    """Runs a child workflow with `input`; with waitForCompletion (the default) its output is the child's."""

    type_name = "subworkflow"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "workflowId": ConfigField("string", description="The id of a stored workflow."),
        "workflowPath": ConfigField(
            "string", description="A workflow file under a configured workflow folder."
        ),
        "input": ConfigField("template", description="The child run's input; may embed {{ expressions }}."),
        "waitForCompletion": ConfigField(
            "boolean", description="Wait for the child to finish (default true)."
        ),
    }
    inline = True

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        given = [key for key in ("workflowId", "workflowPath") if config.get(key) is not None]
        if not given:
            return [("", 'set "workflowId" or "workflowPath"')]
        if len(given) == 2:
            return [("workflowPath", 'set either "workflowId" or "workflowPath", not both')]
        value = config[given[0]]
        if isinstance(value, str) and not value.strip():
            return [(given[0], "must not be empty")]
        return []

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        child = {
            "workflowId": config.get("workflowId", ""),
            "workflowPath": config.get("workflowPath", ""),
            "input": ctx.render(config["input"]) if "input" in config else {},
            "waitForCompletion": bool(config.get("waitForCompletion", True)),
        }
        return NodeResult(suspend=ChildRun(child=child))
