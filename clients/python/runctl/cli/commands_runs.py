"""Commands about runs: run, ls, status, watch, stop, continue, approve, resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from runctl.cli.context import EXIT_INTERRUPTED, CliError, CliState, print_json, state
from runctl.cli.render import (
    event_line,
    execution_header,
    execution_status,
    execution_view,
    executions_table,
)
from runctl.cli.streams import follow_execution
from runctl.cli.values import enum_value, parse_assignments, parse_for_each, parse_object
from runctl.client import Client
from runctl.errors import UnimplementedError
from runctl.messages import FINISHED_EXECUTION_STATUSES, to_dict
from runctl.v1 import common_pb2, execution_pb2

# Exit codes of `run --watch` and `watch` (documented in the README).
EXIT_COMPLETED = 0
EXIT_ERROR = 1
EXIT_STOPPED = 2
EXIT_UNFINISHED = 3
POLL_SECONDS = 0.3

JsonOption = Annotated[bool, typer.Option("--json", help="Print the protobuf JSON mapping, for scripts.")]


def exit_code(status: int) -> int:
    """0 completed, 1 error, 2 stopped, 3 not finished (paused or still running)."""
    if status == common_pb2.EXECUTION_STATUS_COMPLETED:
        return EXIT_COMPLETED
    if status == common_pb2.EXECUTION_STATUS_ERROR:
        return EXIT_ERROR
    if status == common_pb2.EXECUTION_STATUS_STOPPED:
        return EXIT_STOPPED
    return EXIT_UNFINISHED


def _detached(st: CliState, execution_id: str) -> typer.Exit:
    st.err.print(f"detached: {execution_id} goes on; follow it again with `runctl watch {execution_id}`")
    return typer.Exit(EXIT_INTERRUPTED)


def follow_run(
    st: CliState, client: Client, execution: execution_pb2.Execution, *, detach_on_pause: bool, show: bool
) -> execution_pb2.Execution:
    """Follow a run on its watch stream, drawing its live node table, until it ends (or pauses, if
    asked); returns the run as it ended."""

    def paused(current: execution_pb2.Execution) -> bool:
        return detach_on_pause and current.status == common_pb2.EXECUTION_STATUS_PAUSED

    if not show:
        return follow_execution(client, execution.id, until=paused)
    with Live(execution_view(execution), console=st.out, refresh_per_second=8) as live:
        execution = follow_execution(
            client, execution.id, until=paused, changed=lambda current: live.update(execution_view(current))
        )
        live.update(execution_view(execution))
    if not st.out.is_terminal:
        st.out.line()  # a terminal gets its newline from Live; a pipe only sees the final table
    return execution


# A target with one of these endings, or a folder in it, is meant as a file even when it is missing.
WORKFLOW_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def workflow_target(target: str | None, workflow: str | None) -> tuple[Path | None, str | None]:
    """(local file, stored workflow id) for `runctl run`: TARGET is a file when one exists there,
    else a stored workflow id; --workflow names an id explicitly."""
    if (target is None) == (workflow is None):
        raise CliError("give a workflow FILE or stored workflow ID (or --workflow ID), one of them")
    if target is None:
        return None, workflow
    path = Path(target).expanduser()
    if path.exists():
        return path, None
    if path.suffix.lower() in WORKFLOW_FILE_SUFFIXES or "/" in target or "\\" in target:
        raise CliError(f"{target}: no such file")
    return None, target


def run(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE_OR_ID",
            help="A local workflow file (JSON or YAML), sent inline, or a stored workflow's id.",
        ),
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-W", help="Run a stored workflow by id instead of a file.")
    ] = None,
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="The run's input: a JSON object, or @file.json.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Show a live table of the nodes until the run ends.")
    ] = False,
    detach_on_pause: Annotated[
        bool, typer.Option(help="With --watch: stop watching (exit 3) when the run pauses.")
    ] = False,
    request_id: Annotated[
        str | None, typer.Option(help="Idempotency key: the same key returns the same run.")
    ] = None,
    trace_logs: Annotated[bool, typer.Option(help="Record trace logs from the start.")] = False,
    disable_breakpoints: Annotated[bool, typer.Option(help="Ignore every breakpoint of this run.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a run of a workflow file or a stored workflow; with --watch, follow it to the end.

    Exit codes with --watch: 0 completed, 1 error, 2 stopped, 3 paused (with --detach-on-pause).
    """
    st = state(ctx)
    file, workflow = workflow_target(target, workflow)
    values = parse_object(input, "--input")
    with st.client() as client:
        execution = client.start(
            file,
            workflow_id=workflow,
            input=values,
            request_id=request_id,
            trace_logs=trace_logs,
            disable_breakpoints=disable_breakpoints,
        )
        if not watch:
            if as_json:
                print_json(execution)
            else:
                st.out.print(execution_header(execution))
                st.out.print(f"follow it: runctl watch {execution.id}", style="dim")
            return
        try:
            execution = follow_run(st, client, execution, detach_on_pause=detach_on_pause, show=not as_json)
        except KeyboardInterrupt:
            raise _detached(st, execution.id) from None
        if as_json:
            print_json(execution)
    raise typer.Exit(exit_code(execution.status))


def list_runs(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only runs in this status (repeatable or comma-separated): running, paused, ...",
        ),
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-W", help="Only runs of this workflow id.")
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Only runs of this batch id.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many runs.")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    st = state(ctx)
    names = [name for item in status or () for name in item.split(",") if name.strip()]
    statuses = [
        common_pb2.ExecutionStatus.ValueType(
            enum_value(common_pb2.ExecutionStatus, "EXECUTION_STATUS_", name, "--status")
        )
        for name in names
    ]
    with st.client() as client:
        reply = client.list_executions(
            statuses=statuses, workflow_id=workflow or "", batch_id=batch or "", page_size=limit
        )
    if as_json:
        print_json(reply)
        return
    if not reply.executions:
        st.out.print("no runs", style="dim")
        return
    st.out.print(executions_table(reply.executions))
    if reply.total_size > len(reply.executions):
        st.out.print(f"{len(reply.executions)} of {reply.total_size} (--limit for more)", style="dim")


def latest_run(client: Client, *statuses: common_pb2.ExecutionStatus.ValueType) -> execution_pb2.Execution:
    """The run a command without an id acts on: the most recently created one (in `statuses`)."""
    latest = client.latest(statuses=statuses)
    if latest is None:
        words = " or ".join(execution_status(s) for s in statuses)
        raise CliError(f"there is no {words + ' ' if words else ''}run")
    return latest


def status(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(help="The run; the most recent one when left out.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run: status, nodes, error or output, and what it waits for."""
    st = state(ctx)
    with st.client() as client:
        execution = client.get(execution_id or latest_run(client).id)
    if as_json:
        print_json(execution)
    else:
        st.out.print(execution_view(execution))


def _print_message(st: CliState, message: execution_pb2.WatchExecutionResponse) -> None:
    kind = message.WhichOneof("kind")
    if kind == "snapshot":
        st.out.print(execution_header(message.snapshot))
        if message.history_truncated:
            st.out.print("(older events are gone from the log; this snapshot replaces them)", style="yellow")
    elif kind == "events":
        for event in message.events.events:
            st.out.print(event_line(event))


def _poll_history(st: CliState, client: Client, execution_id: str, after: int | None, as_json: bool) -> None:
    """For servers without WatchExecution: read the run's history every ~0.3 s until it ends."""
    cursor = after or 0
    if after is None and not as_json:
        st.out.print(execution_header(client.get(execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC)))
    while True:
        finished = (
            client.get(execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC).status
            in FINISHED_EXECUTION_STATUSES
        )
        for event in client.history(execution_id, after_sequence=cursor):
            cursor = event.sequence
            if as_json:
                typer.echo(json.dumps(to_dict(event)))
            else:
                st.out.print(event_line(event))
        if finished:
            return
        time.sleep(POLL_SECONDS)


def watch(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The run to watch.")],
    after: Annotated[
        int | None, typer.Option("--after", help="Start after this event sequence (no snapshot).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each stream message as one line of JSON.")
    ] = False,
) -> None:
    """Print a run's events as they happen, until it ends (exit code as `run --watch`)."""
    st = state(ctx)
    with st.client() as client:
        # A unary call first: an unknown run or an unreachable server is reported at once, while the
        # stream itself keeps reconnecting through server restarts.
        client.get(execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC)
        try:
            for message in client.watch_execution(execution_id, after_sequence=after):
                if as_json:
                    typer.echo(json.dumps(to_dict(message)))
                else:
                    _print_message(st, message)
        except UnimplementedError:
            _poll_history(st, client, execution_id, after, as_json)
        except KeyboardInterrupt:
            raise _detached(st, execution_id) from None
        final = client.get(execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC)
    if not as_json:
        st.out.print(Text.assemble("run ", (execution_status(final.status), "bold")))
    raise typer.Exit(exit_code(final.status))


def stop(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The run to stop.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the run's events).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Stop a run: its nodes are cancelled, its pause points abandoned."""
    st = state(ctx)
    with st.client() as client:
        reply = client.stop(execution_id, reason=reason)
    if as_json:
        print_json(reply)
        return
    how = "was running" if reply.was_running else "was queued" if reply.was_queued else "had already ended"
    st.out.print(f"stopped {reply.execution_id} ({how})")


def continue_run(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(help="The paused run; the most recently paused one when left out.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a run paused at a breakpoint or a wait node."""
    st = state(ctx)
    with st.client() as client:
        execution = client.continue_(
            execution_id or latest_run(client, common_pb2.EXECUTION_STATUS_PAUSED).id
        )
    if as_json:
        print_json(execution)
    else:
        st.out.print(
            Text.assemble("continued ", (execution.id, "bold"), f": {execution_status(execution.status)}")
        )


def approve(
    ctx: typer.Context,
    context_id: Annotated[str, typer.Argument(help="The pause point's context id (see `runctl status`).")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="A form value, FIELD=VALUE (repeatable): true/false, numbers and null are typed, "
            'the rest are strings ("42" in quotes stays a string).',
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="All values as a JSON object, or @file.json.")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who approves (recorded as resolved_by).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Resume a pause point (an approval's form, or a wait's data) with values."""
    st = state(ctx)
    values = {**parse_object(data, "--data"), **parse_assignments(set_ or ())}
    with st.client() as client:
        reply = client.approve(context_id, values, actor=actor)
    if as_json:
        print_json(reply)
    elif reply.action == execution_pb2.RESUME_ACTION_RESUMED:
        point = reply.pause_point
        st.out.print(
            Text.assemble(("resumed ", "green"), (context_id, "bold"), f" (run {point.execution_id})")
        )
    else:
        st.out.print(Text.assemble(("skipped: ", "yellow"), reply.reason or "nothing to resume"))


def resume(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The run.")],
    node_id: Annotated[str, typer.Argument(help="The waiting node.")],
    data: Annotated[
        str | None, typer.Option("--data", help="The payload: a JSON object, or @file.json.")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="The workflow's webhook secret.", envvar="RUNCTL_WEBHOOK_SECRET", show_envvar=True),
    ] = None,
    for_each: Annotated[
        list[str] | None,
        typer.Option("--for-each", help="Loop iteration, LOOP_NODE=INDEX (repeatable, outermost first)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a waiting node with a data payload, proving the workflow's webhook secret."""
    st = state(ctx)
    if not secret:
        raise CliError("--secret (or RUNCTL_WEBHOOK_SECRET) is required: the workflow's webhook secret")
    payload = parse_object(data, "--data")
    frames = parse_for_each(for_each or ())
    with st.client() as client:
        reply = client.resume_node(execution_id, node_id, secret=secret, data=payload, for_each=frames)
    if as_json:
        print_json(reply)
    elif reply.action == execution_pb2.RESUME_ACTION_RESUMED:
        st.out.print(Text.assemble(("resumed ", "green"), (f"{execution_id} {node_id}", "bold")))
    else:
        st.out.print(Text.assemble(("skipped: ", "yellow"), reply.reason or "nothing to resume"))
