"""The `runctl` command line: the commands that talk to a server, and those other distributions add.

The client commands live in commands_*.py; the server distribution adds `serve`, `keys`, `db` and
`prune` through entry points (plugins.py). global options (`--addr`, `--api-key`, `--tls-ca`) go
before the command: `runctl --addr 10.0.0.5:50051 ls`. Listings are `ls` everywhere, with `list` as
a hidden alias.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runctl.cli import commands_batch, commands_control, commands_events, commands_runs
from runctl.cli.commands_batches import batches_app
from runctl.cli.commands_workflows import workflows_app
from runctl.cli.context import CliState, RunctlGroup
from runctl.cli.plugins import add_installed_commands

app = typer.Typer(
    name="runctl",
    help="runctl: run workflow graphs durably and steer every run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=RunctlGroup,
)


def _print_version(value: bool) -> None:
    if not value:
        return
    try:
        from importlib.metadata import version

        typer.echo(f"runctl {version('runctl')}")
    except Exception:  # not installed as a distribution (a source checkout on sys.path)
        typer.echo("runctl (version unknown: not installed)")
    raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    addr: Annotated[
        str | None,
        typer.Option(help="The server, HOST:PORT (default 127.0.0.1:50051).", envvar="RUNCTL_ADDR"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key, sent as x-api-key metadata.", envvar="RUNCTL_API_KEY")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            help="PEM root certificates: connect with TLS verified by them.", envvar="RUNCTL_TLS_CA"
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print runctl's version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """runctl: run workflow graphs durably and steer every run."""
    ctx.obj = CliState(addr=addr, api_key=api_key, tls_ca=tls_ca)


app.command("run")(commands_runs.run)
app.command("ls")(commands_runs.list_runs)
app.command("list", hidden=True)(commands_runs.list_runs)
app.command("status")(commands_runs.status)
app.command("watch")(commands_runs.watch)
app.command("stop")(commands_runs.stop)
app.command("continue")(commands_runs.continue_run)
app.command("pause")(commands_control.pause)
app.command("skip")(commands_control.skip)
app.command("events")(commands_events.events)
app.command("approve")(commands_runs.approve)
app.command("resume")(commands_runs.resume)
app.command("batch")(commands_batch.batch)
app.add_typer(workflows_app)
app.add_typer(batches_app)
add_installed_commands(app)


if __name__ == "__main__":
    app()
