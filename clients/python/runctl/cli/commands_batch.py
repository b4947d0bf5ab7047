"""`runctl batch FOLDER`: start a batch and follow it on its watch stream with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runctl.cli.commands_runs import JsonOption
from runctl.cli.context import EXIT_INTERRUPTED, print_json, state
from runctl.cli.render import batch_counts, batch_items_table, batch_status
from runctl.cli.streams import follow_batch
from runctl.cli.values import parse_object
from runctl.v1 import batch_resource_pb2

EXIT_BATCH_COMPLETED = 0
EXIT_BATCH_FAILURES = 1
EXIT_BATCH_STOPPED = 2


def batch_exit_code(batch: batch_resource_pb2.Batch) -> int:
    """0 every run completed, 1 a run failed (or the batch did), 2 stopped."""
    if batch.status == batch_resource_pb2.BATCH_STATUS_STOPPED or batch.stopped:
        return EXIT_BATCH_STOPPED
    if batch.status == batch_resource_pb2.BATCH_STATUS_ERROR or batch.failed:
        return EXIT_BATCH_FAILURES
    return EXIT_BATCH_COMPLETED


def progress_counts(batch: batch_resource_pb2.Batch) -> str:
    """Counts short enough to sit beside the bar: completed, failed, running."""
    failed = f"[red]{batch.failed} failed[/red]" if batch.failed else f"{batch.failed} failed"
    stopped = f"  [magenta]{batch.stopped} stopped[/magenta]" if batch.stopped else ""
    return (
        f"[green]{batch.completed} completed[/green]  {failed}  [cyan]{batch.running} running[/cyan]{stopped}"
    )


def server_path(folder: str) -> str:
    """A folder that exists here is sent as an absolute path (the server checks it lies under its
    workflow roots); anything else is sent as given, relative to the server's roots."""
    local = Path(folder).expanduser()
    return str(local.resolve()) if local.is_dir() else folder


def batch(
    ctx: typer.Context,
    folder: Annotated[
        str,
        typer.Argument(
            help="A folder of workflow files under the server's --workflows-dir (absolute or relative)."
        ),
    ],
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", "-c", min=0, max=100, help="Runs at once; 0 = the server's default."),
    ] = 0,
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Input of every run: a JSON object, or @file.json.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the batch with a progress bar until it ends.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Run every workflow file of a folder as one batch, with a progress bar.

    Exit codes: 0 every run completed, 1 some run failed, 2 the batch was stopped.
    """
    st = state(ctx)
    values = parse_object(input, "--input")
    with st.client() as client:
        started = client.start_batch(server_path(folder), concurrency=concurrency, input=values)
        if not wait:
            if as_json:
                print_json(started)
            else:
                st.out.print(f"started {started.batch_id}: {started.total_workflows} runs")
            return
        try:
            if as_json:
                current = follow_batch(client, started.batch_id)
            else:
                st.out.print(f"batch {started.batch_id}: {started.total_workflows} runs")
                columns = (
                    TextColumn("[bold]{task.description}"),
                    BarColumn(bar_width=20),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[counts]}"),
                    TimeElapsedColumn(),
                )
                with Progress(*columns, console=st.out) as progress:
                    task = progress.add_task("batch", total=started.total_workflows, counts="")

                    def show(batch: batch_resource_pb2.Batch) -> None:
                        ended = batch.completed + batch.failed + batch.stopped
                        progress.update(task, completed=ended, counts=progress_counts(batch))

                    current = follow_batch(client, started.batch_id, show)
                    show(current)
        except KeyboardInterrupt:
            st.err.print(f"detached: batch {started.batch_id} goes on")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        print_json(current)
    else:
        st.out.print(batch_items_table(current))
        st.out.print(f"batch {current.batch_id} {batch_status(current.status)}: ", batch_counts(current))
    raise typer.Exit(batch_exit_code(current))
