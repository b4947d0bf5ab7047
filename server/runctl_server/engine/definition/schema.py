"""The workflow document's JSON Schema, made from the same declarations the validator enforces: the
document's keys and limits (model.py) and each built-in node type's config schema (its ConfigFields).

The schema is what an editor can check while a document is written; the validator stays the authority
(it also checks what a schema cannot say: edges naming existing nodes, cycles, expressions that
compile). `make generate` writes it to docs/workflow.schema.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runctl_server.engine.definition.model import (
    BODY_KEYS,
    EDGE_KEYS,
    MAX_CANVAS,
    MAX_NAME_LENGTH,
    MAX_SECONDS,
    NODE_ID,
    NODE_KEYS,
    RETRY_KEYS,
    TOP_KEYS,
)
from runctl_server.nodes.base import ConfigField, ConfigKind, NodeType

SCHEMA_ID = "https://github.com/runctl/runctl/raw/main/docs/workflow.schema.json"

_KINDS: Mapping[ConfigKind, Mapping[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "expression": {"type": "string", "description": "a JMESPath expression"},
    "template": {"description": "any JSON value; its strings may embed {{ expression }}"},
    "object": {"type": "object"},
    "array": {"type": "array"},
    "any": {},
}


def _closed(
    properties: Mapping[str, Any], keys: frozenset[str], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An object with exactly `keys` (declared in model.py, where the validator reads them too)."""
    assert set(properties) == set(keys), f"schema and model disagree: {sorted(set(properties) ^ keys)}"
    shape: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        shape["required"] = list(required)
    shape["additionalProperties"] = False
    return shape


def config_field_schema(spec: ConfigField) -> dict[str, Any]:
    shape = dict(_KINDS[spec.kind])
    if spec.description:
        shape["description"] = spec.description
    if spec.choices:
        shape["enum"] = list(spec.choices)
    if spec.minimum is not None:
        shape["minimum"] = spec.minimum
    if spec.maximum is not None:
        shape["maximum"] = spec.maximum
    return shape


def config_schema(node_type: NodeType) -> dict[str, Any]:
    fields = node_type.config_schema
    shape: dict[str, Any] = {
        "type": "object",
        "properties": {key: config_field_schema(spec) for key, spec in fields.items()},
    }
    required = [key for key, spec in fields.items() if spec.required]
    if required:
        shape["required"] = required
    if not node_type.open_config:
        shape["additionalProperties"] = False
    return shape


def _seconds(description: str, *, exclusive: bool = False) -> dict[str, Any]:
    bound = {"exclusiveMinimum": 0} if exclusive else {"minimum": 0}
    return {"type": "number", **bound, "maximum": MAX_SECONDS, "description": description}


def workflow_schema(node_types: Mapping[str, NodeType]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow document whose nodes are of `node_types` or are
    handed to external workers (any other type, with a queue)."""
    names = sorted(node_types)
    loops = sorted(name for name, node_type in node_types.items() if node_type.has_body)
    per_type = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": {"config": config_schema(node_types[name])}},
        }
        for name in names
    ]
    node = _closed(
        {
            "id": {
                "type": "string",
                "pattern": f"^{NODE_ID.pattern}$",
                "description": "unique in the whole document, loop bodies included",
            },
            "type": {
                "type": "string",
                "minLength": 1,
                "description": f"a built-in type ({', '.join(names)}), or any other with a queue",
            },
            "name": {"type": "string"},
            "config": {"type": "object", "description": "what the node type takes"},
            "breakpoint": {"type": "boolean", "description": "pause before the node runs"},
            "retry": {"$ref": "#/$defs/retry"},
            "timeoutSeconds": _seconds("how long one attempt may take", exclusive=True),
            "queue": {"type": "string", "description": "the worker queue that runs the node"},
            "body": {"$ref": "#/$defs/body"},
        },
        NODE_KEYS,
        ("id", "type"),
    )
    node["allOf"] = [
        *per_type,
        {  # a type that is not built in is a task for external workers: it needs their queue
            "if": {"properties": {"type": {"not": {"enum": names}}}},
            "then": {"required": ["queue"]},
        },
        {  # only loops carry a body, and they need one
            "if": {"properties": {"type": {"enum": loops}}, "required": ["type"]},
            "then": {"required": ["body"]},
            "else": {"not": {"required": ["body"]}},
        },
    ]
    edge = _closed(
        {
            "from": {"type": "string", "description": "the source node's id"},
            "to": {"type": "string", "description": "the target node's id"},
            "when": {"type": "string", "description": "the branch of the source that takes this edge"},
        },
        EDGE_KEYS,
        ("from", "to"),
    )
    nodes = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}}
    edges = {"type": "array", "items": {"$ref": "#/$defs/edge"}}
    retry = _closed(
        {
            "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 100},
            "backoffSeconds": _seconds("the pause before the first retry"),
            "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 100},
            "maxBackoffSeconds": _seconds("the longest pause between attempts"),
        },
        RETRY_KEYS,
    )
    coordinate = {"type": "number", "minimum": -MAX_CANVAS, "maximum": MAX_CANVAS}
    canvas = {"type": "integer", "minimum": 0, "maximum": MAX_CANVAS}
    document = _closed(
        {
            "name": {"type": "string", "maxLength": MAX_NAME_LENGTH},
            "description": {"type": "string"},
            "nodes": nodes,
            "edges": edges,
            "positions": {
                "type": "object",
                "description": "where the editor draws each top-level node, by node id",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"x": coordinate, "y": coordinate},
                    "required": ["x", "y"],
                    "additionalProperties": False,
                },
            },
            "width": canvas,
            "height": canvas,
        },
        TOP_KEYS,
        ("nodes",),
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "runctl workflow",
        "description": "A workflow document (JSON or YAML): nodes, the edges between them, their layout.",
        **document,
        "$defs": {
            "node": node,
            "edge": edge,
            "body": _closed({"nodes": nodes, "edges": edges}, BODY_KEYS, ("nodes",)),
            "retry": retry,
        },
    }
