"""The offline check behind `runctl workflows validate`: the server's own validator, found by the client
through the `runctl.validators` entry point group, so the client never imports the server."""

from __future__ import annotations

import os
from pathlib import Path

from runctl.cli.context import CliError
from runctl.cli.validate import Problem, Verdict
from runctl.messages import WorkflowFileError, load_workflow_file


def validate_file(path: Path) -> Verdict:
    """Check a local workflow file as `runctl run FILE` would send it and the server would judge it:
    every problem, not only the first."""
    from runctl_server.api.convert import definition_document
    from runctl_server.engine.definition import parse_definition
    from runctl_server.errors import InvalidArgument
    from runctl_server.nodes.registry import load_node_types
    from runctl_server.settings import Limits, SettingsError

    try:
        max_nodes = Limits.from_env(os.environ).max_workflow_nodes
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    try:
        definition = load_workflow_file(path)
    except WorkflowFileError as exc:
        return Verdict(path, problems=[Problem("document", str(exc))])
    try:
        document = definition_document(definition)
        parse_definition(document, load_node_types(), max_nodes=max_nodes)
    except InvalidArgument as exc:
        found = [Problem(v.field, v.description) for v in exc.violations]
        return Verdict(path, len(definition.nodes), found or [Problem("document", str(exc))])
    return Verdict(path, len(definition.nodes))
