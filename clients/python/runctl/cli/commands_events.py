"""`runctl events`: the event log, of one run or filtered, and with --follow what happens next."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated

import typer

from runctl.cli.commands_runs import exit_code
from runctl.cli.context import EXIT_INTERRUPTED, CliState, state
from runctl.cli.render import event_line
from runctl.cli.values import enum_value
from runctl.client import Client
from runctl.messages import FINISHED_EXECUTION_STATUSES, to_dict
from runctl.v1 import event_pb2, execution_pb2

PAGE_SIZE = 1000


class _Printer:
    """Prints events (as lines, or one JSON object a line) and remembers the last sequence seen."""

    def __init__(self, st: CliState, cursor: int, types: frozenset[int], as_json: bool) -> None:
        self.st, self.cursor, self.types, self.as_json = st, cursor, types, as_json

    def print(self, events: Iterable[event_pb2.Event]) -> None:
        for event in events:
            self.cursor = max(self.cursor, event.sequence)
            if self.types and event.type not in self.types:
                continue
            if self.as_json:
                typer.echo(json.dumps(to_dict(event)))
            else:
                self.st.out.print(event_line(event))


def _run_events(client: Client, execution_id: str, printer: _Printer, follow: bool) -> int | None:
    """A run's history; with `follow`, then its events until it ends. The run's exit code when
    followed, else None."""
    basic = execution_pb2.EXECUTION_VIEW_BASIC
    client.get(execution_id, view=basic)  # an unknown run is NOT_FOUND before anything prints
    printer.print(client.history(execution_id, after_sequence=printer.cursor))
    if not follow:
        return None
    status = client.get(execution_id, view=basic).status
    if status in FINISHED_EXECUTION_STATUSES:
        # It may have ended after the history was read: its last events are logged by now.
        printer.print(client.history(execution_id, after_sequence=printer.cursor))
        return exit_code(status)
    for message in client.watch_execution(execution_id, after_sequence=printer.cursor):
        if message.WhichOneof("kind") == "events":
            printer.print(message.events.events)
    return exit_code(client.get(execution_id, view=basic).status)


def _log_events(client: Client, printer: _Printer, follow: bool, workflow_id: str, batch_id: str) -> None:
    """The event log (filtered); with `follow`, then every new event until interrupted."""
    types = [event_pb2.EventType.ValueType(kind) for kind in sorted(printer.types)]
    after, token = printer.cursor, ""
    while True:
        reply = client.list_events(
            after_sequence=after,
            workflow_id=workflow_id,
            batch_id=batch_id,
            types=types,
            page_size=PAGE_SIZE,
            page_token=token,
        )
        printer.print(reply.events)
        printer.cursor = max(printer.cursor, reply.head_sequence)
        token = reply.next_page_token
        if not token:
            break
    if follow:
        stream = client.stream_events(
            after_sequence=printer.cursor, workflow_id=workflow_id, batch_id=batch_id, types=types
        )
        for message in stream:
            if message.WhichOneof("kind") == "events":
                printer.print(message.events.events)


def events(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(help="A run: its history. Left out: the whole event log (filtered).")
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-W", help="Only events of this workflow's runs.")
    ] = None,
    batch: Annotated[
        str | None, typer.Option("--batch", help="Only events of this batch and its runs.")
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            "-t",
            help="Only events of this type (repeatable or comma-separated), e.g. execution_completed.",
        ),
    ] = None,
    after: Annotated[int, typer.Option("--after", min=0, help="Only events after this sequence.")] = 0,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Then keep printing new events: a run's until it ends, the log's until Ctrl-C.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print each event as one line of JSON.")] = False,
) -> None:
    """Print logged events, oldest first: a run's history, or the event log filtered.

    With --follow on a run, the exit code is the run's, as for `runctl watch`.
    """
    st = state(ctx)
    if execution_id and (workflow or batch):
        raise typer.BadParameter("a run's events are already one run's: leave out --workflow and --batch")
    names = [name for item in type_ or () for name in item.split(",") if name.strip()]
    types = frozenset(enum_value(event_pb2.EventType, "EVENT_TYPE_", name, "--type") for name in names)
    printer = _Printer(st, after, types, as_json)
    with st.client() as client:
        try:
            if execution_id:
                code = _run_events(client, execution_id, printer, follow)
                if code is not None:
                    raise typer.Exit(code)
            else:
                _log_events(client, printer, follow, workflow or "", batch or "")
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
