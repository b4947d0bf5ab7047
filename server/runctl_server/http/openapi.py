"""The OpenAPI document of the HTTP shim, made from the same Endpoint declarations that serve it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from runctl_server import __version__
from runctl_server.http.routing import Endpoint
from runctl_server.http.workflow_schema import workflow_components
from runctl_server.nodes.base import NodeType

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "success": {"type": "boolean"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
REASONS = {400: "Bad request", 401: "Unauthorized", 404: "Not found", 409: "Conflict", 413: "Too large"}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    parameters += [
        {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "schema": dict(param.schema),
            **({"description": param.description} if param.description else {}),
        }
        for param in endpoint.query
    ]
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": "OK",
            "content": {endpoint.media_type: {"schema": dict(endpoint.response)}},
        }
    }
    error_schema = ERROR_SCHEMA if endpoint.error_media_type == "application/json" else {"type": "string"}
    for status in (*endpoint.error_statuses, 413) if endpoint.body is not None else endpoint.error_statuses:
        responses[str(status)] = {
            "description": REASONS.get(status, "Error"),
            "content": {endpoint.error_media_type: {"schema": error_schema}},
        }
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": re.sub(r"\W+", "_", f"{endpoint.method}_{endpoint.path}").strip("_"),
        "tags": [f"{endpoint.source} API" if endpoint.source != "implied" else "implied"],
        "parameters": parameters,
        "responses": responses,
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {endpoint.body_media_type: {"schema": dict(endpoint.body)}},
        }
    return operation


def openapi_document(
    endpoints: Iterable[Endpoint], node_types: Mapping[str, NodeType] | None = None
) -> dict[str, Any]:
    """The document of `endpoints`; with `node_types` (the server's), it carries the workflow
    document's component schemas that request bodies refer to."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "runctl HTTP shim", "version": __version__},
        "paths": paths,
    }
    if node_types is not None:
        document["components"] = {"schemas": workflow_components(node_types)}
    return document
