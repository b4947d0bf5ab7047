"""Workflow documents sent over HTTP (DESIGN.md "Workflow files") as WorkflowDefinition messages.

Protobuf's JSON parser stops at the first problem and is lenient where the file format is not (it takes
"5" for a number). This walks the document against the message's descriptor first and reports every
field that cannot become the message: unknown fields, wrong JSON types, numbers out of range, each
with a proto-JSON path (`nodes[2].timeoutSeconds`) like the engine's own validation uses. What fits the
message is then validated by the servicer (unique ids, edges between nodes, node configs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from runctl.v1 import workflow_pb2
from runctl_server.errors import FieldViolation, InvalidArgument, describe
from runctl_server.http.workflow_schema import DOCUMENT_REF

# Deepest nesting of values accepted inside a config (as the engine's MAX_VALUE_DEPTH).
MAX_DEPTH = 64
INT32 = (-(2**31), 2**31 - 1)
INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
FLOAT_TYPES = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
ANY_JSON = ("google.protobuf.Value", "google.protobuf.ListValue")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class _Checker:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path or "body", description))

    def message(self, raw: Any, descriptor: Descriptor, path: str, depth: int) -> None:
        if not isinstance(raw, Mapping):
            self.add(path, f"must be an object, not {describe(raw)}")
            return
        fields = {field.json_name: field for field in descriptor.fields}
        for key, value in raw.items():
            field = fields.get(key)
            where = _join(path, str(key))
            if field is None:
                self.add(where, "unknown field")
            elif value is not None:
                self.field(value, field, where, depth + 1)

    def field(self, value: Any, field: FieldDescriptor, path: str, depth: int) -> None:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if not isinstance(value, Mapping):
                self.add(path, f"must be an object, not {describe(value)}")
                return
            value_field = entry.fields_by_name["value"]
            for key, item in value.items():
                self.single(item, value_field, _join(path, str(key)), depth + 1)
            return
        if field.is_repeated:
            if not isinstance(value, list):
                self.add(path, f"must be an array, not {describe(value)}")
                return
            for index, item in enumerate(value):
                self.single(item, field, f"{path}[{index}]", depth + 1)
            return
        self.single(value, field, path, depth)

    def single(self, value: Any, field: FieldDescriptor, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.add(path, f"nested too deeply (at most {MAX_DEPTH} levels)")
            return
        kind = field.type
        if field.message_type is not None:
            name = field.message_type.full_name
            if name == "google.protobuf.Struct":
                if not isinstance(value, Mapping):
                    self.add(path, f"must be an object, not {describe(value)}")
                else:
                    self.plain(value, path, depth)
            elif name in ANY_JSON:
                self.plain(value, path, depth)
            else:
                self.message(value, field.message_type, path, depth)
        elif kind == FieldDescriptor.TYPE_STRING:
            if not isinstance(value, str):
                self.add(path, f"must be a string, not {describe(value)}")
        elif kind == FieldDescriptor.TYPE_BOOL:
            if not isinstance(value, bool):
                self.add(path, f"must be a boolean (true or false), not {describe(value)}")
        elif kind in INTEGER_TYPES:
            low, high = INTEGER_TYPES[kind]
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            if isinstance(value, bool) or not whole:
                self.add(path, f"must be an integer, not {describe(value)}")
            elif not low <= value <= high:
                self.add(path, f"must lie between {low} and {high}")
        elif kind in FLOAT_TYPES:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.add(path, f"must be a number, not {describe(value)}")
            elif not math.isfinite(value):
                self.add(path, "must be a finite number")
        elif kind == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            if not isinstance(value, str) or value not in field.enum_type.values_by_name:
                names = ", ".join(field.enum_type.values_by_name)
                self.add(path, f"must be one of {names}")
        else:  # bytes: not in workflow documents
            self.add(path, "is not supported in a workflow document")

    def plain(self, value: Any, path: str, depth: int) -> None:
        """Any JSON value (a config, a Struct): finite numbers, bounded nesting."""
        if depth > MAX_DEPTH:
            self.add(path, f"nested too deeply (at most {MAX_DEPTH} levels)")
        elif isinstance(value, float) and not math.isfinite(value):
            self.add(path, "must be a finite number")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.plain(item, _join(path, str(key)), depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.plain(item, f"{path}[{index}]", depth + 1)


def plain_json_violations(value: Any, path: str) -> list[FieldViolation]:
    """Problems of a free-form JSON value (a payload): non-finite numbers, nesting too deep."""
    checker = _Checker()
    checker.plain(value, path, 0)
    return checker.violations


def definition_message(document: Any, *, prefix: str = "") -> workflow_pb2.WorkflowDefinition:
    """The WorkflowDefinition of a JSON workflow document; InvalidArgument with every violation."""
    checker = _Checker()
    checker.message(document, workflow_pb2.WorkflowDefinition.DESCRIPTOR, prefix, 0)
    if not checker.violations:
        try:
            return json_format.ParseDict(document, workflow_pb2.WorkflowDefinition())
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
            checker.add(prefix, f"is not a workflow document: {exc}")
    count = len(checker.violations)
    noun = "problem" if count == 1 else "problems"
    raise InvalidArgument(
        f"workflow document is invalid: {count} {noun}",
        checker.violations,
        reason="WORKFLOW_DEFINITION_INVALID",
    )


DEFINITION_FIELDS = frozenset(field.json_name for field in workflow_pb2.WorkflowDefinition.DESCRIPTOR.fields)


def under(prefix: str, error: InvalidArgument) -> InvalidArgument:
    """The servicer's violations of an inline document, with paths from the HTTP body's root."""
    moved = [
        FieldViolation(_join(prefix, v.field), v.description)
        if v.field.split(".", 1)[0].split("[", 1)[0] in DEFINITION_FIELDS
        else v
        for v in error.violations
    ]
    return InvalidArgument(error.message, moved, reason=error.reason)


# The body schema of a workflow document: a reference to the component schemas the OpenAPI document
# carries (http/workflow_schema.py, made from the validator's declarations).
DOCUMENT_SCHEMA: dict[str, Any] = DOCUMENT_REF
