"""Named driver commands.

Whatever steers a run runs inside the run's driver. The driver may be in another replica, so a
command is a name plus JSON arguments (never a closure) and its answer is JSON (engine/message_json.py).
Handlers register here by name; the Engine hands the table to the scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runctl_server.engine.scheduler import Driven, Scheduler

CommandHandler = Callable[["Scheduler", "Driven", dict[str, Any]], Any]

COMMANDS: dict[str, CommandHandler] = {}


class SendCommand(Protocol):
    """Runs a driver command inside a run's driver, wherever it is driven (Engine.send); answers its
    result once committed, or None when the run has ended and the command never ran."""

    def __call__(
        self, execution_id: str, command: str, args: Mapping[str, Any] | None = None, /
    ) -> Awaitable[Any]: ...


def command(name: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register a driver command under `name` (unique)."""

    def register(handler: CommandHandler) -> CommandHandler:
        if name in COMMANDS and COMMANDS[name] is not handler:
            raise RuntimeError(f"driver command {name!r} is registered twice")
        COMMANDS[name] = handler
        return handler

    return register
