"""Named driver commands.

Whatever steers a run runs inside the run's driver. The driver may be in another replica, so a
command is a name plus JSON arguments (never a closure) and its answer is JSON (engine/message_json.py).
Handlers register here by name; the Engine hands the table to the scheduler. A handler gets the run's
Driven, its arguments, and RunSteering: the few scheduler moves that also reach past the run's fields
(its worklist, its in-flight work), never the whole Scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runctl_server.engine.model import NodeRecord
    from runctl_server.engine.scheduler import Driven


class RunSteering(Protocol):
    """What a driver command may ask of the scheduler about the run it was handed (the Scheduler
    provides it); everything else a command does is a change to the run's own fields."""

    def stop_run(self, driven: Driven, reason: str) -> None:
        """End the run as stopped, cancelling its in-flight node work."""
        ...

    def skip_paused(self, driven: Driven, record: NodeRecord) -> None:
        """Mark the paused node skipped and go on past it."""
        ...

    def pass_breakpoint(self, driven: Driven, record: NodeRecord) -> None:
        """Run the node paused at a breakpoint, without pausing again."""
        ...

    def resume_waiting(self, driven: Driven, record: NodeRecord, output: Any, data: Any = None) -> None:
        """Complete a node waiting at a pause point with `output`, and go on."""
        ...

    def release(self, driven: Driven) -> None:
        """Lift the run's queue slot or operator's pause and look at its graph again."""
        ...

    def refresh(self, driven: Driven) -> None:
        """Look at every ready node again (a hold was lifted elsewhere)."""
        ...


CommandHandler = Callable[[RunSteering, "Driven", dict[str, Any]], Any]

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
