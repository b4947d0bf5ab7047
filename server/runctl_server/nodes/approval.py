"""The `approval` node: a person fills in a form (approve or reject, plus typed fields) to resume the run."""

from __future__ import annotations

import re
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
from runctl_server.nodes.wait import ON_TIMEOUT, TIMEOUT_LABEL, timeout_problems

DEFAULT_TITLE = "Approval Required"
FIELD_TYPES = ("text", "number", "boolean", "select")
FIELD_KEYS = frozenset({"name", "type", "label", "description", "required", "default", "options"})
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field_problems(index: int, item: Any, seen: dict[str, int]) -> list[tuple[str, str]]:
    path = f"formFields[{index}]"
    if not isinstance(item, Mapping):
        return [(path, "must be an object with a name and a type")]
    problems = [(f"{path}.{key}", "unknown field") for key in item if key not in FIELD_KEYS]

    name = item.get("name")
    if name is None:
        problems.append((f"{path}.name", "required"))
    elif not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        problems.append(
            (f"{path}.name", "must be an identifier: a letter or '_', then letters, digits or '_'")
        )
    elif name in seen:
        problems.append((f"{path}.name", f"duplicate field name {name!r} (also formFields[{seen[name]}])"))
    else:
        seen[name] = index

    kind = item.get("type", "text")
    if kind not in FIELD_TYPES:
        problems.append((f"{path}.type", f"must be one of: {', '.join(FIELD_TYPES)}"))
        kind = None
    for key in ("label", "description"):
        if item.get(key) is not None and not isinstance(item[key], str):
            problems.append((f"{path}.{key}", "must be a string"))
    if item.get("required") is not None and not isinstance(item["required"], bool):
        problems.append((f"{path}.required", "must be a boolean (true or false)"))

    options = item.get("options")
    valid_options: list[str] = []
    if kind == "select":
        if not isinstance(options, list) or not options:
            problems.append((f"{path}.options", "a select field needs a non-empty array of options"))
        else:
            for position, option in enumerate(options):
                if not isinstance(option, str) or not option:
                    problems.append((f"{path}.options[{position}]", "must be a non-empty string"))
                elif option in valid_options:
                    problems.append((f"{path}.options[{position}]", f"duplicate option {option!r}"))
                else:
                    valid_options.append(option)
    elif options is not None:
        problems.append((f"{path}.options", "only select fields take options"))

    default = item.get("default")
    if default is not None and kind is not None:
        expected = {
            "text": (isinstance(default, str), "must be a string, as the field is text"),
            "number": (_is_number(default), "must be a number, as the field is a number"),
            "boolean": (isinstance(default, bool), "must be true or false, as the field is a boolean"),
            "select": (default in valid_options, "must be one of the options"),
        }
        ok, message = expected[kind]
        if not ok and (kind != "select" or valid_options):
            problems.append((f"{path}.default", message))
    return problems


class ApprovalNode(NodeType):
    """Pauses until a person approves or rejects, filling the form; the output holds their answers."""

    type_name = "approval"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "title": ConfigField("string", description=f'Shown above the form (default "{DEFAULT_TITLE}").'),
        "message": ConfigField("string", description="What the person is asked to decide."),
        "formFields": ConfigField(
            "array",
            description="Fields to fill: {name, type (text|number|boolean|select), label, description, "
            "required, default, options}.",
        ),
        "display": ConfigField("template", description="Data shown to the person beside the form."),
        "timeoutSeconds": ConfigField(
            "number", maximum=MAX_WAIT_SECONDS, description="Give up waiting after this many seconds."
        ),
        "onTimeout": ConfigField("string", choices=ON_TIMEOUT, description='As for wait: "fail" by default.'),
    }
    inline = True

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = timeout_problems(config)
        fields = config.get("formFields")
        if isinstance(fields, list):
            seen: dict[str, int] = {}
            for index, item in enumerate(fields):
                problems.extend(_field_problems(index, item, seen))
        return problems

    def branch_labels(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({TIMEOUT_LABEL})

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        pause = {
            "kind": "approval",
            "display": {
                "title": ctx.render(config.get("title", "Approval Required")),
                "message": ctx.render(config.get("message", "")),
            },
            "formFields": list(config.get("formFields", [])),
            "timeoutSeconds": config.get("timeoutSeconds"),
            "onTimeout": config.get("onTimeout", "fail"),
        }
        return NodeResult(suspend=PausePoint(pause=pause))
