"""Batches: many runs started together from workflow files or workflow ids, run with a concurrency limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runctl_server.engine.engine import Engine


class Batches:
    """Starts, tracks, stops and clears batches."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def start(self) -> None:
        """After a restart: give running batches their free slots again."""

    async def stop_all(self, workspace_id: str) -> list[str]:
        """Mark every running batch stopped (their runs are stopped by the caller); answers their ids."""
        return []
