"""Commands and checks that other installed distributions add to `runctl`, found by entry points.

The server distribution registers `serve`, `keys`, `db` and `prune` (group `runctl.commands`) and the
offline workflow validator (group `runctl.validators`); the client imports nothing of it by name. Where
the server is not installed, its commands still answer, with how to install it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer

from runctl.cli.context import fail

COMMANDS_GROUP = "runctl.commands"
# The commands the server adds: without it they say how to install it instead of "No such command".
SERVER_COMMANDS = ("serve", "keys", "db", "prune")
SERVER_INSTALL_HINT = (
    "`runctl {command}` comes with the runctl server, which is not installed here: "
    "pip install runctl-server (add [postgres] for PostgreSQL)"
)


def installed(group: str, name: str | None = None) -> Iterator[Any]:
    """The loaded objects of a group's entry points, skipping those whose distribution is gone (its
    metadata left behind, or its package hidden): that is the same as not installed."""
    found: tuple[EntryPoint, ...] = tuple(entry_points(group=group))
    for entry_point in found:
        if name is not None and entry_point.name != name:
            continue
        try:
            yield entry_point.load()
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != entry_point.module.split(".")[0]:
                raise  # the package is there but one of its own imports is broken: a bug to see
            continue


def _command_names(app: typer.Typer) -> set[str]:
    names = {info.name for info in app.registered_commands if info.name}
    for group in app.registered_groups:
        name = group.name or (group.typer_instance.info.name if group.typer_instance else None)
        if isinstance(name, str):
            names.add(name)
    return names


def _server_missing(command: str) -> Callable[..., None]:
    def missing(ctx: typer.Context) -> None:
        fail(ctx, SERVER_INSTALL_HINT.format(command=command))

    missing.__doc__ = f"`runctl {command}` needs the runctl server (not installed)."
    return missing


def add_installed_commands(app: typer.Typer) -> None:
    """Let every installed distribution add its commands; stand in for the server's when it is absent."""
    for register in installed(COMMANDS_GROUP):
        register(app)
    present = _command_names(app)
    for command in SERVER_COMMANDS:
        if command not in present:
            app.command(
                command,
                hidden=True,
                # whatever options or arguments followed, the answer is how to install the server
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            )(_server_missing(command))
