"""docs/workflow.schema.json: made from the validator's own declarations, current, a valid JSON Schema,
satisfied by every example workflow, and refusing documents the validator refuses."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runctl_server.engine.definition import load_document, parse_definition
from runctl_server.errors import InvalidArgument
from runctl_server.http.workflow_schema import DOCUMENT_REF, workflow_components
from runctl_server.nodes.registry import builtin_node_types

REPOSITORY = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPOSITORY / "docs" / "workflow.schema.json"
EXAMPLES = sorted(
    path for path in (REPOSITORY / "examples").iterdir() if path.suffix in (".json", ".yaml", ".yml")
)
TYPES = builtin_node_types()


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_published_schema_is_the_one_the_server_declares() -> None:
    spec = importlib.util.spec_from_file_location(
        "workflow_schema", REPOSITORY / "scripts" / "workflow_schema.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert SCHEMA_FILE.read_text(encoding="utf-8") == script.render(), "run make generate"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_workflow_satisfies_the_schema(path: Path) -> None:
    assert EXAMPLES, "examples/ holds workflows"
    document = load_document(path.read_text(encoding="utf-8"), filename=path.name)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(document)]
    assert errors == []


VALID: dict[str, Any] = {
    "name": "Checked",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "pause", "type": "delay", "config": {"seconds": 5}, "retry": {"maxAttempts": 2}},
        {"id": "each", "type": "for_each", "config": {"items": "input.items"}, "body": {
            "nodes": [{"id": "shout", "type": "transform", "config": {"output": "{{ item }}"}}]}},
        {"id": "ocr", "type": "ocr-page", "queue": "gpu"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "pause"}, {"from": "pause", "to": "each"},
        {"from": "each", "to": "ocr"}, {"from": "ocr", "to": "end"},
    ],
}  # fmt: skip


def _broken(change: str) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    nodes = document["nodes"]
    if change == "no nodes":
        del document["nodes"]
    elif change == "unknown top-level field":
        document["owner"] = "me"
    elif change == "node id with a space":
        nodes[1]["id"] = "the pause"
    elif change == "config of the wrong type":
        nodes[1]["config"]["seconds"] = "five"
    elif change == "unknown config field":
        nodes[1]["config"]["minutes"] = 1
    elif change == "edge without a target":
        del document["edges"][0]["to"]
    elif change == "worker type without a queue":
        del nodes[3]["queue"]
    elif change == "loop without a body":
        del nodes[2]["body"]
    elif change == "body on a node that is no loop":
        nodes[1]["body"] = {"nodes": [{"id": "x", "type": "log"}]}
    elif change == "retry out of range":
        nodes[1]["retry"]["maxAttempts"] = 0
    return document


BROKEN = [
    "no nodes",
    "unknown top-level field",
    "node id with a space",
    "config of the wrong type",
    "unknown config field",
    "edge without a target",
    "worker type without a queue",
    "loop without a body",
    "body on a node that is no loop",
    "retry out of range",
]


def test_the_valid_document_passes_the_schema_and_the_validator() -> None:
    assert list(_validator().iter_errors(VALID)) == []
    parse_definition(VALID, TYPES)


@pytest.mark.parametrize("change", BROKEN)
def test_an_invalid_document_fails_the_schema_as_it_fails_the_validator(change: str) -> None:
    document = _broken(change)
    assert list(_validator().iter_errors(document)), f"the schema accepts a document with {change}"
    with pytest.raises(InvalidArgument):
        parse_definition(document, TYPES)


# The shim's OpenAPI document (3.0) carries the same schema, rewritten to what 3.0's Schema Object can
# say; JSON Schema draft 4 reads 3.0's keywords (exclusiveMinimum as a flag) the same way.
def _openapi_validator() -> jsonschema.Draft4Validator:
    components = {"schemas": workflow_components(TYPES)}
    forbidden = {"$defs", "$schema", "$id", "const", "if", "then", "else"}
    assert not forbidden & _keys(components), "3.0 has no such keyword"
    return jsonschema.Draft4Validator({**DOCUMENT_REF, "components": components})


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value))
    return set()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_workflow_satisfies_the_openapi_schema(path: Path) -> None:
    document = load_document(path.read_text(encoding="utf-8"), filename=path.name)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _openapi_validator().iter_errors(document)]
    assert errors == []


def test_the_openapi_schema_accepts_the_valid_document() -> None:
    assert list(_openapi_validator().iter_errors(VALID)) == []


@pytest.mark.parametrize("change", BROKEN)
def test_the_openapi_schema_refuses_what_the_validator_refuses(change: str) -> None:
    document = _broken(change)
    assert list(_openapi_validator().iter_errors(document)), f"the schema accepts a document with {change}"
