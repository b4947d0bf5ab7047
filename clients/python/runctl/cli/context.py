"""What every client command shares: the connection options, the consoles, and friendly errors.

Expected failures (a gRPC status, an unreachable server, a bad file or argument) print one clear
message in red on stderr and exit with code 1; only bugs show a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc
import typer
from google.protobuf.message import Message
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from runctl.client import Client
from runctl.connection import ConnectionSettings, RetryPolicy
from runctl.errors import RpcFailure, from_rpc_error
from runctl.messages import WorkflowFileError, to_dict

# The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
# A person at a terminal should hear quickly that the server is down: three tries, about 0.6 s.
CLI_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.2, max_backoff=1.0)


class CliError(Exception):
    """A problem with what the user asked for (a bad value, a missing file): message, exit code 1."""


@dataclass
class CliState:
    """The global options (`runctl --addr ... --api-key ... --tls-ca ... COMMAND`)."""

    addr: str | None = None
    api_key: str | None = None
    tls_ca: Path | None = None
    # soft_wrap: long lines (ids, hints, messages) stay whole for copying; tables still fit the width.
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True))

    @property
    def target(self) -> str:
        return ConnectionSettings.resolve(self.addr).target

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A client for this invocation, closed afterwards."""
        try:
            client = Client(self.addr, api_key=self.api_key, tls_ca=self.tls_ca, retry=CLI_RETRY)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        interrupted = False
        try:
            yield client
        except KeyboardInterrupt:
            interrupted = True
            raise
        except typer.Exit as exit_:
            interrupted = exit_.exit_code == EXIT_INTERRUPTED
            raise
        finally:
            if interrupted:
                # Ctrl-C can land inside grpc while a stream waits for its next message, leaving the
                # call half torn down; closing the channel (here, or grpc itself as the interpreter
                # exits) then waits for that call forever. Leave at once: the OS closes the socket.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)
            client.close()


def state(ctx: typer.Context) -> CliState:
    """The CliState of the running command (created by the root callback)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def print_json(value: Message | dict[str, Any] | list[Any]) -> None:
    """Print a message in the protobuf JSON mapping (or plain JSON data), for scripts."""
    data = to_dict(value) if isinstance(value, Message) else value
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def report(console: Console, error: BaseException, target: str) -> None:
    """Print an expected failure in red: the status code and message, and the field violations."""
    if isinstance(error, grpc.RpcError) and not isinstance(error, RpcFailure):
        error = from_rpc_error(error, target=target)
    if not isinstance(error, RpcFailure):
        console.print(f"[red]error:[/red] {escape(str(error))}")
        return
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        detail = (
            error.message.split("): ", 1)[-1] if error.message.startswith("cannot reach") else error.message
        )
        console.print(f"[red bold]cannot reach runctl at {escape(error.target or target)}[/red bold]")
        console.print(f"[red]{escape(detail)}[/red]")
        console.print(
            "Is the server running (`runctl serve`)? Point --addr or RUNCTL_ADDR at it.", style="dim"
        )
        return
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        answer = f"runctl at {escape(target)} did not answer in time"
        console.print(f"[red bold]DEADLINE_EXCEEDED:[/red bold] [red]{answer}[/red]")
        return
    message, violations = error.message, [str(v) for v in error.field_violations]
    if violations == [message]:
        violations = []
    elif violations and f": {violations[0]}" in message:
        # The server spells the first violations out in the message too; list them once, below.
        message = message[: message.index(f": {violations[0]}")]
    console.print(f"[red bold]{error.code_name}:[/red bold] [red]{escape(message)}[/red]")
    for violation in violations:
        console.print(f"  [red]- {escape(violation)}[/red]")


def fail(ctx: typer.Context, message: str) -> NoReturn:
    """Print an error and exit 1."""
    state(ctx).err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)


class RunctlGroup(TyperGroup):
    """Turns expected failures of any command into a friendly message and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except (grpc.RpcError, CliError, WorkflowFileError) as error:
            current = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
            report(current.err, error, current.target)
            raise typer.Exit(1) from None
