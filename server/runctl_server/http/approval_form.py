"""What the approval page posts, turned into the values ResumePausePoint takes.

A browser posts `application/x-www-form-urlencoded` strings. Each is converted by its form field's type
(number, boolean, select, text) here, at the edge; whether the values fit the form (required fields,
select options, unknown names) is the engine's to decide, as for every other resume. A string that is not
a number is reported the way the engine reports a bad value: a field violation `values.<name>`.

Names the page itself posts start with "runctl.", which no form field name can (field names are
identifiers), so they never collide with a workflow's fields:

    runctl.contextId   the pause point the form answers (one page may show several)
    runctl.decision    "approve" or "reject", from the two buttons; it becomes the boolean `approved`
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from runctl.v1 import pause_point_pb2
from runctl_server.engine.forms import DECISION
from runctl_server.errors import FieldViolation, InvalidArgument
from runctl_server.http.errors import PayloadTooLarge
from runctl_server.http.routing import Call

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
CONTEXT_FIELD = "runctl.contextId"
DECISION_FIELD = "runctl.decision"
DECISIONS = {"approve": True, "reject": False}
OWN_PREFIX = "runctl."
MAX_FIELDS = 1000
NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0", "")


async def read_form(call: Call) -> dict[str, str]:
    """The posted form, one value per name (the last one when a name repeats)."""
    media_type = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("", FORM_MEDIA_TYPE):
        raise InvalidArgument.single(
            "body", f"must be a form post ({FORM_MEDIA_TYPE}), not {media_type}", reason="FIELD_INVALID"
        )
    raw = bytearray()
    async for chunk in call.request.stream():
        raw.extend(chunk)
        if len(raw) > call.max_body_bytes:
            raise PayloadTooLarge(
                f"the request body is larger than {call.max_body_bytes} bytes", reason="PAYLOAD_TOO_LARGE"
            )
    try:
        pairs = parse_qsl(
            raw.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS
        )
    except ValueError:
        raise InvalidArgument.single(
            "body", f"has more than {MAX_FIELDS} fields", reason="FIELD_INVALID"
        ) from None
    return dict(pairs)


def parse_number(text: str) -> int | float | None:
    """A decimal number ("12", "-0.5", "1e3"), or None when `text` is not one (or is not finite)."""
    text = text.strip()
    if not NUMBER.fullmatch(text):
        return None
    if re.fullmatch(r"[+-]?[0-9]+", text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts
            return None
    number = float(text)
    return number if math.isfinite(number) else None


def _convert(field: pause_point_pb2.FormField, raw: str | None) -> tuple[Any, str | None]:
    """(value, problem) for one posted field; value None = omitted (the engine applies the default)."""
    kind = field.type
    if kind == pause_point_pb2.FORM_FIELD_TYPE_BOOLEAN:
        word = (raw or "").strip().lower()  # an unticked checkbox posts nothing: false
        if word in TRUE_WORDS:
            return True, None
        if word in FALSE_WORDS:
            return False, None
        return None, f"must be true or false, got {raw!r}"
    if raw is None:
        return None, None
    if kind == pause_point_pb2.FORM_FIELD_TYPE_NUMBER:
        if not raw.strip():
            return None, None
        number = parse_number(raw)
        return (number, None) if number is not None else (None, f"must be a number, got {raw!r}")
    if kind == pause_point_pb2.FORM_FIELD_TYPE_SELECT and raw == "":
        return None, None  # the "choose one" placeholder
    return raw, None


def form_values(
    fields: Sequence[pause_point_pb2.FormField], form: Mapping[str, str]
) -> tuple[dict[str, Any], list[FieldViolation]]:
    """The values to resume with, and the posted strings that are not of their field's type."""
    values: dict[str, Any] = {}
    violations: list[FieldViolation] = []
    decision = DECISIONS.get(form.get(DECISION_FIELD, ""))
    if decision is None:
        violations.append(FieldViolation(f"values.{DECISION}", "choose Approve or Reject"))
    else:
        values[DECISION] = decision
    declared = {field.name for field in fields}
    for field in fields:
        if field.name == DECISION:
            continue  # the Approve and Reject buttons answer it
        value, problem = _convert(field, form.get(field.name))
        if problem is None and value is None and field.required:
            problem = "is required"  # said here too, so one round shows it beside a bad number
        if problem is not None:
            violations.append(FieldViolation(f"values.{field.name}", problem))
        elif value is not None:
            values[field.name] = value
    for name, raw in form.items():
        if name not in declared and name != DECISION and not name.startswith(OWN_PREFIX):
            values[name] = raw  # not a field of the form: the engine says so, or a wait node takes it
    return values, violations
