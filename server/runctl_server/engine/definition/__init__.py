"""Workflow documents: the model (model.py), its validation (validation.py), reading JSON and YAML files
(loading.py), and the document's JSON Schema (schema.py)."""

from __future__ import annotations

from runctl_server.engine.definition.loading import load_document
from runctl_server.engine.definition.model import DEFAULT_NAME, Definition
from runctl_server.engine.definition.validation import parse_definition, subworkflow_paths
from runctl_server.nodes.spec import EdgeSpec, Graph, NodeSpec, RetryPolicy

__all__ = [
    "DEFAULT_NAME",
    "Definition",
    "EdgeSpec",
    "Graph",
    "NodeSpec",
    "RetryPolicy",
    "load_document",
    "parse_definition",
    "subworkflow_paths",
]
