"""Commands that steer one run besides continue and stop: pause (an operator's pause) and skip."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from runctl.cli.commands_runs import JsonOption, latest_run
from runctl.cli.context import print_json, state
from runctl.cli.render import execution_status
from runctl.v1 import common_pb2, execution_pb2


def pause(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The run to pause.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the run's events).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Pause a running run: nodes in flight finish, no new node starts until `runctl continue`."""
    st = state(ctx)
    with st.client() as client:
        execution = client.pause_execution(execution_id, reason=reason)
    if as_json:
        print_json(execution)
        return
    st.out.print(Text.assemble("paused ", (execution.id, "bold"), f": {execution_status(execution.status)}"))
    st.out.print(f"go on with: runctl continue {execution.id}", style="dim")


def skip(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(help="The paused run; the most recently paused one when left out.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Skip the node a run is paused at (a breakpoint, wait or approval): it ends SKIPPED, the run goes on."""
    st = state(ctx)
    with st.client() as client:
        run_id = execution_id or latest_run(client, common_pb2.EXECUTION_STATUS_PAUSED).id
        execution = client.control_pause(execution_pb2.PAUSE_ACTION_SKIP, run_id)
    if as_json:
        print_json(execution)
    else:
        st.out.print(
            Text.assemble(
                "skipped the paused node of ",
                (execution.id, "bold"),
                f": {execution_status(execution.status)}",
            )
        )
