"""Parsing what a person types: JSON objects, `field=value` pairs, status names."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runctl.cli.context import CliError
from runctl.messages import ForEach

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def parse_value(text: str) -> Any:
    """A `--set` value: true/false, null, a number, a JSON string/object/array, else the text itself.

    `"42"` (with the quotes) stays a string; `42` is a number; `yes` is the string "yes".
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    if stripped[:1] in ('"', "{", "["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            pass
    return text


def parse_assignments(pairs: Iterable[str]) -> dict[str, Any]:
    """`--set field=value ...` as a dict; a dotted field (`a.b=1`) builds nested objects."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliError(f"--set {pair!r}: expected FIELD=VALUE")
        target = values
        *parents, leaf = name.split(".")
        for parent in parents:
            child = target.setdefault(parent, {})
            if not isinstance(child, dict):
                raise CliError(f"--set {pair!r}: {parent!r} is already set to a value")
            target = child
        target[leaf] = parse_value(raw)
    return values


def parse_object(text: str | None, option: str) -> dict[str, Any]:
    """A JSON object given inline or as `@file.json`; empty when not given."""
    if text is None or not text.strip():
        return {}
    source = text
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{option}: cannot read {path}: {exc.strerror}") from None
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{option}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise CliError(f'{option}: expected a JSON object, like \'{{"name": "Ada"}}\'')
    return value


def parse_for_each(items: Iterable[str]) -> list[ForEach]:
    """`--for-each LOOP=INDEX ...`, outermost loop first."""
    frames: list[ForEach] = []
    for item in items:
        loop, sep, index = item.partition("=")
        if not sep or not loop.strip() or not _INT.fullmatch(index.strip()):
            raise CliError(f"--for-each {item!r}: expected LOOP_NODE=INDEX, like each_order=2")
        frames.append(ForEach(parent_node_id=loop.strip(), index=int(index)))
    return frames


def enum_value(enum: Any, prefix: str, text: str, option: str) -> int:
    """An enum value from a short name: `running`, `RUNNING` or `EXECUTION_STATUS_RUNNING`."""
    name = text.strip().upper().replace("-", "_")
    if not name.startswith(prefix):
        name = prefix + name
    try:
        return int(enum.Value(name))
    except ValueError:
        names: list[str] = list(enum.keys())
        choices = ", ".join(n.removeprefix(prefix).lower() for n in names if not n.endswith("_UNSPECIFIED"))
        raise CliError(f"{option}: unknown value {text!r}; choose from {choices}") from None
