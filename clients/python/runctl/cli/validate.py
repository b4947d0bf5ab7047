"""Offline checks of workflow files with the server's own validator (`runctl workflows validate`).

The validator lives in the server package; it is imported only here, when a check runs, so the client
works without the server installed and says so when a check needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runctl.cli.context import CliError
from runctl.messages import WorkflowFileError, load_workflow_file

SERVER_PACKAGE = "runctl_server"
SERVER_MISSING = (
    "`runctl workflows validate` checks files with the server's own validator, and the runctl server "
    "is not installed here (pip install runctl-server); `runctl workflows create FILE` checks a file "
    "on a running server instead"
)


class ServerNotInstalled(Exception):
    """The runctl server package, which holds the validator, cannot be imported."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where (a field path such as `nodes[2].config.url`) and what."""

    field: str
    description: str


@dataclass(frozen=True)
class Verdict:
    """What the validator found in one file."""

    file: Path
    nodes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def validate_file(path: Path) -> Verdict:
    """Check a local workflow file as `runctl run FILE` would send it and the server would judge it:
    every problem, not only the first. Raises ServerNotInstalled without the server package."""
    try:
        import runctl_server  # noqa: F401 - only to learn whether it is there
    except ModuleNotFoundError as exc:
        if exc.name != SERVER_PACKAGE:
            raise  # the server is there but broken: that is a bug to see, not a missing package
        raise ServerNotInstalled(SERVER_MISSING) from None
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
