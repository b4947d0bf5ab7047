"""Which workflows' runs may start no new node (the workflow pause API), as this process knows it.

The status rows of workflows are the durable truth; this is the copy the scheduler consults before it
starts any node. WorkflowControl changes it around its commits, and every replica reloads it when any
replica pauses or resumes a workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class WorkflowHolds:
    def __init__(self) -> None:
        self._paused: set[str] = set()
        # Paused but not committed yet: their runs start no node, but do not show PAUSED before the
        # WORKFLOW_PAUSED event that causes it is in the log.
        self._pending: set[str] = set()

    def is_paused(self, workflow_id: str | None) -> bool:
        return workflow_id in self._paused

    def is_pending(self, workflow_id: str | None) -> bool:
        return workflow_id in self._pending

    @contextmanager
    def pausing(self, workflow_id: str) -> Iterator[None]:
        """Hold the workflow's runs while its pause commits; the hold stays only if the body succeeds
        (or the workflow was held already)."""
        was_held = workflow_id in self._paused
        self._paused.add(workflow_id)
        self._pending.add(workflow_id)
        try:
            yield
        except BaseException:
            if not was_held:
                self._paused.discard(workflow_id)
            raise
        finally:
            self._pending.discard(workflow_id)

    def lift(self, workflow_id: str) -> None:
        """The workflow was resumed or cancelled."""
        self._paused.discard(workflow_id)

    def replace(self, paused: Iterable[str]) -> set[str]:
        """The paused workflows as just read from their rows; answers those no longer paused."""
        before = self._paused
        self._paused = set(paused)
        return before - self._paused
