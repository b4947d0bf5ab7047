"""The `condition` and `switch` nodes: choose which outgoing edges (by their `when`) a run follows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from runctl_server.nodes.base import ConfigField, NodeContext, NodeResult, NodeType

DEFAULT_CASE = "default"


class ConditionNode(NodeType):
    """Follows the edges marked `when: "true"` if the expression is truthy, else those marked "false"."""

    type_name = "condition"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "expression": ConfigField("expression", required=True, description="A JMESPath expression."),
    }
    inline = True

    def branch_labels(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"true", "false"})

    async def execute(self, ctx: NodeContext) -> NodeResult:
        result = truthy(ctx.evaluate(str(ctx.node.config["expression"])))
        # "" keeps unlabeled edges flowing: they are taken whichever way the condition goes.
        return NodeResult(output={"result": result}, branches=frozenset({"true" if result else "false", ""}))


class SwitchNode(NodeType):
    """Follows the edges marked with the case equal to the expression's value, else "default"."""

    type_name = "switch"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "expression": ConfigField("expression", required=True, description="A JMESPath expression."),
        "cases": ConfigField("array", required=True, description="The values to branch on, as strings."),
    }
    inline = True

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        cases = config.get("cases")
        if not isinstance(cases, list):
            return []
        if not cases:
            return [("cases", "must list at least one case")]
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, case in enumerate(cases):
            if not isinstance(case, str) or not case:
                problems.append((f"cases[{index}]", "must be a non-empty string"))
            elif case == DEFAULT_CASE:
                problems.append((f"cases[{index}]", f'"{DEFAULT_CASE}" is reserved for the fallback branch'))
            elif case in seen:
                problems.append((f"cases[{index}]", f"duplicate case {case!r}"))
            else:
                seen.add(case)
        return problems

    def branch_labels(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        cases = config.get("cases")
        labels = {case for case in cases if isinstance(case, str)} if isinstance(cases, list) else set()
        return frozenset(labels | {DEFAULT_CASE})

    async def execute(self, ctx: NodeContext) -> NodeResult:
        value = ctx.evaluate(str(ctx.node.config["expression"]))
        cases = [str(case) for case in ctx.node.config.get("cases", [])]
        text = value if isinstance(value, str) else json.dumps(value)
        case = text if text in cases else "default"
        return NodeResult(output={"value": value, "case": case}, branches=frozenset({case, ""}))


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, and empty strings, arrays and objects are false."""
    return value not in (False, None, "", [], {})
