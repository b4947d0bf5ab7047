"""Writes docs/workflow.schema.json, the workflow document's JSON Schema, from the server's own
declarations (server/runctl_server/engine/definition/schema.py). Run by `make generate`."""

from __future__ import annotations

import json
from pathlib import Path

from runctl_server.engine.definition.schema import workflow_schema
from runctl_server.nodes.registry import builtin_node_types

TARGET = Path(__file__).resolve().parents[1] / "docs" / "workflow.schema.json"


def render() -> str:
    return json.dumps(workflow_schema(builtin_node_types()), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
