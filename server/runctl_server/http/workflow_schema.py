"""The workflow document's schema in the shim's OpenAPI document, converted from the one the engine
declares (engine/definition/schema.py, also published as docs/workflow.schema.json), so the HTTP
documentation and editors check a document by the same keys and limits the validator enforces.

The OpenAPI document is 3.0, whose Schema Object is a subset of JSON Schema: no `$defs`, `const` or
`if`/`then`/`else`, and `exclusiveMinimum` is a flag. Each is rewritten to what 3.0 says the same way;
the shared definitions become component schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runctl_server.engine.definition.schema import workflow_schema
from runctl_server.nodes.base import NodeType

# The component schema names, by JSON Schema definition (the document itself under "").
COMPONENT_NAMES = {
    "": "WorkflowDocument",
    "node": "WorkflowNode",
    "edge": "WorkflowEdge",
    "body": "WorkflowBody",
    "retry": "WorkflowRetry",
}
DOCUMENT_REF: dict[str, Any] = {"$ref": f"#/components/schemas/{COMPONENT_NAMES['']}"}

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMAS = ("items", "not", "additionalProperties", "if", "then", "else")
_DROPPED = ("$schema", "$id", "$defs")


def _ref(target: str) -> str:
    prefix = "#/$defs/"
    if not target.startswith(prefix) or target[len(prefix) :] not in COMPONENT_NAMES:
        raise ValueError(f"no component for the reference {target!r}")
    return f"#/components/schemas/{COMPONENT_NAMES[target[len(prefix) :]]}"


def _conditional(condition: Any, then: Any, otherwise: Any) -> dict[str, Any]:
    """if/then/else as 3.0 says it: either the condition and `then` hold, or not and `else` does."""
    if otherwise is None:
        return {"anyOf": [{"not": condition}, then if then is not None else {}]}
    taken = {"allOf": [condition, then]} if then is not None else condition
    return {"anyOf": [taken, {"allOf": [{"not": condition}, otherwise]}]}


def openapi_schema(schema: Any) -> Any:
    """A JSON Schema (draft 2020-12) as an OpenAPI 3.0 Schema Object; `$defs` references point at
    the workflow component schemas."""
    if not isinstance(schema, Mapping):
        return schema  # `true`/`false` (additionalProperties) and plain values
    shape: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED or key in ("if", "then", "else"):
            continue
        if key == "$ref":
            shape[key] = _ref(str(value))
        elif key == "const":
            shape["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            shape[key.replace("exclusiveM", "m")] = value
            shape[key] = True
        elif key in _SCHEMA_MAPS:
            shape[key] = {name: openapi_schema(item) for name, item in value.items()}
        elif key in _SCHEMA_LISTS:
            shape[key] = [openapi_schema(item) for item in value]
        elif key in _SCHEMAS:
            shape[key] = openapi_schema(value)
        else:
            shape[key] = value
    if "if" in schema:
        converted = _conditional(*(openapi_schema(schema.get(part)) for part in ("if", "then", "else")))
        if not shape:
            return converted  # a bare condition (an item of allOf) needs no wrapping
        shape.setdefault("allOf", []).append(converted)
    return shape


def workflow_components(node_types: Mapping[str, NodeType]) -> dict[str, Any]:
    """The component schemas of a workflow document whose nodes are of `node_types` (the server's
    own, plugins included) or are tasks for external workers."""
    schema = workflow_schema(node_types)
    components = {
        COMPONENT_NAMES[name]: openapi_schema(definition) for name, definition in schema["$defs"].items()
    }
    components[COMPONENT_NAMES[""]] = openapi_schema(schema)
    return components
