"""Offline checks of workflow files with the server's own validator (`runctl workflows validate`).

The validator belongs to the server distribution, which offers it through the `runctl.validators`
entry point group; the client never imports the server, and says how to install it when it is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

VALIDATORS_GROUP = "runctl.validators"
WORKFLOW_VALIDATOR = "workflow"
SERVER_MISSING = (
    "`runctl workflows validate` checks files with the server's own validator, and the runctl server "
    "is not installed here (pip install runctl-server); `runctl workflows create FILE` checks a file "
    "on a running server instead"
)


class ServerNotInstalled(Exception):
    """No installed distribution offers the workflow validator (the server is not installed)."""


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


def _workflow_validator() -> Callable[[Path], Verdict]:
    from runctl.cli.plugins import installed

    for validator in installed(VALIDATORS_GROUP, WORKFLOW_VALIDATOR):
        found: Callable[[Path], Verdict] = validator
        return found
    raise ServerNotInstalled(SERVER_MISSING)


def validate_file(path: Path) -> Verdict:
    """Check a local workflow file as `runctl run FILE` would send it and the server would judge it:
    every problem, not only the first. Raises ServerNotInstalled without the server."""
    return _workflow_validator()(path)
