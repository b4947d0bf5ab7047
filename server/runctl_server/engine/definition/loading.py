"""Reading a workflow document written as JSON or YAML into plain JSON values (YAML's extras refused,
aliases expanded within a budget), before validation."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

import yaml

from runctl_server.engine.definition.model import MAX_DOCUMENT_VALUES
from runctl_server.errors import InvalidArgument, describe


class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves timestamps as strings: a document must stay plain JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _TooBig(Exception):
    pass


def _plain(value: Any, budget: list[int]) -> Any:
    """A JSON-only copy of loaded YAML; aliases are expanded, within a budget of values."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, bool):
                key = "true" if key else "false"
            elif key is None:
                key = "null"
            elif isinstance(key, int | float):
                key = str(key)
            elif not isinstance(key, str):
                raise ValueError(f"a mapping key must be a string, not {type(key).__name__}")
            copied[key] = _plain(item, budget)
        return copied
    if isinstance(value, list):
        return [_plain(item, budget) for item in value]
    raise ValueError(f"{type(value).__name__} values are not allowed in a workflow document")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _mapping(loaded: Any) -> dict[str, Any]:
    if not isinstance(loaded, dict):
        what = "empty" if loaded is None else describe(loaded)
        raise InvalidArgument.single(
            "document",
            f"must be an object with name, nodes and edges; this document is {what}",
            reason="WORKFLOW_DEFINITION_INVALID",
        )
    return loaded


def load_document(text: str, *, filename: str = "") -> dict[str, Any]:
    """Parse a workflow document written as JSON or YAML; InvalidArgument("document") when it is not one."""
    json_only = filename.lower().endswith(".json")
    json_error = ""
    if json_only or text.lstrip().startswith("{"):
        try:
            return _mapping(json.loads(text, parse_constant=_reject_constant))
        except json.JSONDecodeError as exc:
            json_error = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            if json_only:
                raise InvalidArgument.single(
                    "document", json_error, reason="WORKFLOW_DEFINITION_INVALID"
                ) from None
            # Not JSON, but maybe YAML in flow style; if YAML fails too, the JSON error is the useful one.
        except (ValueError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise InvalidArgument.single(
                "document", f"invalid JSON: {message}", reason="WORKFLOW_DEFINITION_INVALID"
            ) from None
    try:
        loaded = _plain(yaml.load(text, Loader=_Loader), [MAX_DOCUMENT_VALUES])  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        if json_error:
            raise InvalidArgument.single(
                "document", json_error, reason="WORKFLOW_DEFINITION_INVALID"
            ) from None
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        raise InvalidArgument.single(
            "document", f"invalid YAML{where}: {problem}", reason="WORKFLOW_DEFINITION_INVALID"
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidArgument.single(
            "document", json_error or f"invalid YAML: {exc}", reason="WORKFLOW_DEFINITION_INVALID"
        ) from None
    except _TooBig:
        raise InvalidArgument.single(
            "document",
            f"too large: more than {MAX_DOCUMENT_VALUES} values once aliases are expanded",
            reason="WORKFLOW_DEFINITION_INVALID",
        ) from None
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise InvalidArgument.single(
            "document", f"invalid YAML: {message}", reason="WORKFLOW_DEFINITION_INVALID"
        ) from None
    return _mapping(loaded)
