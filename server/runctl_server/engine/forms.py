"""Checking what a person submits at an approval against the approval's form fields.

The field schema is the one nodes/approval.py validates when a workflow is saved: name, type
(text | number | boolean | select), label, description, required, default, options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runctl_server.errors import FieldViolation, InvalidArgument, describe

# The approve / reject decision (the approval page's two buttons send it). Every approval form takes it
# as a boolean, declared or not, so the node's output always says which way the person decided.
DECISION = "approved"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _problem(field: Mapping[str, Any], value: Any) -> str | None:
    """What is wrong with a submitted (non-null) value of one field, if anything."""
    kind = field.get("type") or "text"
    if kind == "number":
        return None if _is_number(value) else f"must be a number, got {describe(value)}"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"must be true or false, got {describe(value)}"
    if kind == "select":
        options = [str(option) for option in field.get("options") or []]
        if isinstance(value, str) and value in options:
            return None
        return f"must be one of: {', '.join(options)}" + (
            "" if isinstance(value, str) else f"; got {describe(value)}"
        )
    return None if isinstance(value, str) else f"must be a string, got {describe(value)}"


def resolve_form_values(
    fields: Sequence[Mapping[str, Any]], values: Mapping[str, Any], *, prefix: str = "values"
) -> dict[str, Any]:
    """The submitted values checked against the form, with defaults filled in for omitted fields.

    Raises InvalidArgument with one violation (`<prefix>.<name>`) per bad value, all at once. A null
    counts as omitted. A form without fields is a plain confirmation: any object is accepted as is.
    """
    if not fields:
        return dict(values)
    violations: list[FieldViolation] = []
    resolved: dict[str, Any] = {}
    for field in fields:
        name = str(field.get("name", ""))
        value = values.get(name)
        if value is None or (value == "" and field.get("required")):
            if field.get("required"):
                violations.append(FieldViolation(f"{prefix}.{name}", "is required"))
            elif field.get("default") is not None:
                resolved[name] = field["default"]
            continue
        problem = _problem(field, value)
        if problem is not None:
            violations.append(FieldViolation(f"{prefix}.{name}", problem))
        else:
            resolved[name] = value
    known = [str(field.get("name", "")) for field in fields]
    for name in values:
        if name in known:
            continue
        if name == DECISION:
            decision = values[name]
            if isinstance(decision, bool):
                resolved[name] = decision
            elif decision is not None:
                violations.append(
                    FieldViolation(f"{prefix}.{name}", f"must be true or false, got {describe(decision)}")
                )
        else:
            violations.append(
                FieldViolation(
                    f"{prefix}.{name}", f"is not a field of this form (fields: {', '.join(known)})"
                )
            )
    if violations:
        raise InvalidArgument(f"{prefix} do not fit the form", violations, reason="FORM_VALUES_INVALID")
    return resolved
