"""Field violations of the servicers (proto names) spelled with the names an HTTP route's caller sent."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from runctl_server.errors import FieldViolation, InvalidArgument

_SEGMENT = re.compile(r"^([^.\[]+)(.*)$", re.DOTALL)


def http_field(
    field: str, segments: Mapping[str, str], prefixes: Sequence[tuple[str, str]] = (), *, deep: bool = True
) -> str:
    """`for_each_context.stack[0].parent_node_id` -> `forEachContext.stack[0].parentNodeId`.

    `prefixes` replace a leading path (`workflow_ids.ids` -> `workflowIds`) first; then each dotted
    segment whose name is in `segments` is renamed, its `[index]` kept; only the first one unless
    `deep` (paths into free-form values, such as a node's config, must keep their keys).
    """
    for old, new in prefixes:
        if field == old or field.startswith((old + ".", old + "[")):
            field = new + field[len(old) :]
            break
    parts = []
    for position, part in enumerate(field.split(".")):
        match = _SEGMENT.match(part)
        if match is not None and match.group(1) in segments and (deep or position == 0):
            part = segments[match.group(1)] + match.group(2)
        parts.append(part)
    return ".".join(parts)


def renamed(
    error: InvalidArgument,
    segments: Mapping[str, str],
    prefixes: Sequence[tuple[str, str]] = (),
    *,
    deep: bool = True,
) -> InvalidArgument:
    """The same error, its violations' fields renamed (see http_field)."""
    violations = [
        FieldViolation(http_field(v.field, segments, prefixes, deep=deep), v.description)
        for v in error.violations
    ]
    message = error.message
    if len(error.violations) == 1 and message.startswith(error.violations[0].field + ":"):
        message = violations[0].field + message[len(error.violations[0].field) :]
    return InvalidArgument(message, violations, reason=error.reason)
