"""`runctl batches ...`: list batches, show one, stop one, clear the finished ones."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runctl.cli.commands_runs import JsonOption
from runctl.cli.context import RunctlGroup, print_json, state
from runctl.cli.render import batch_counts, batch_items_table, batch_status, batches_table
from runctl.cli.values import enum_value
from runctl.v1 import batch_resource_pb2

batches_app = typer.Typer(
    name="batches",
    help="Batches: ls (also: list), get, stop, clear. `runctl batch FOLDER` starts one.",
    no_args_is_help=True,
    cls=RunctlGroup,
)


def list_batches(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only batches in this status (repeatable or comma-separated): running, completed, ...",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List batches, newest first."""
    st = state(ctx)
    names = [name for item in status or () for name in item.split(",") if name.strip()]
    wanted = [
        batch_resource_pb2.BatchStatus.ValueType(
            enum_value(batch_resource_pb2.BatchStatus, "BATCH_STATUS_", name, "--status")
        )
        for name in names
    ]
    with st.client() as client:
        reply = client.list_batches(statuses=wanted, page_size=limit)
    if as_json:
        print_json(reply)
    elif reply.batches:
        st.out.print(batches_table(reply.batches))
        if reply.total_size > len(reply.batches):
            st.out.print(f"{len(reply.batches)} of {reply.total_size} (--limit for more)", style="dim")
    else:
        st.out.print("no batches", style="dim")


batches_app.command("ls")(list_batches)
batches_app.command("list", hidden=True)(list_batches)


@batches_app.command("get")
def get(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(help="The batch.")],
    as_json: JsonOption = False,
) -> None:
    """Show a batch: its status, counts and runs."""
    st = state(ctx)
    with st.client() as client:
        batch = client.get_batch(batch_id)
    if as_json:
        print_json(batch)
        return
    st.out.print(batch_items_table(batch))
    st.out.print(f"batch {batch.batch_id} {batch_status(batch.status)}: ", batch_counts(batch))


@batches_app.command("stop")
def stop(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(help="The batch.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on its events and stopped runs).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Stop a batch: its running and paused runs are stopped, its queued runs cancelled."""
    st = state(ctx)
    with st.client() as client:
        reply = client.stop_batch(batch_id, reason=reason)
    if as_json:
        print_json(reply)
        return
    st.out.print(
        Text.assemble(
            "stopped ",
            (reply.batch_id, "bold"),
            f": {reply.running_stopped} running runs stopped, {reply.queued_cancelled} queued runs cancelled",
        )
    )


@batches_app.command("clear")
def clear(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete every finished batch with its runs (running batches are kept). Cannot be undone."""
    st = state(ctx)
    if not yes:
        typer.confirm("Delete every finished batch and its runs?", abort=True, err=True)
    with st.client() as client:
        reply = client.clear_batches()
    if as_json:
        print_json(reply)
        return
    st.out.print(f"deleted {reply.batches_deleted} batches and {reply.executions_deleted} runs")
    if reply.skipped_batch_ids:
        st.out.print(f"kept, still running: {', '.join(reply.skipped_batch_ids)}", style="yellow")
