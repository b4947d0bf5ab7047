"""Background retention (RUNCTL_RETENTION): ended runs older than the retention period are removed
in bounded batches, a batch at a time with a pause between, so serving never waits on it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine as DatabaseEngine

from runctl_server.store.retention import DEFAULT_BATCH, PruneCounts, prune_batch

log = logging.getLogger(__name__)

# Between batches while there is a backlog, and between looks once there is none.
BACKLOG_PAUSE_SECONDS = 0.5
IDLE_SECONDS = 60.0


class Retention:
    def __init__(
        self,
        database: DatabaseEngine,
        keep_seconds: float,
        *,
        batch: int = DEFAULT_BATCH,
        idle_seconds: float = IDLE_SECONDS,
        on_pruned: Callable[[PruneCounts], None] | None = None,
    ) -> None:
        self._database = database
        self.keep_seconds = keep_seconds
        self._batch = batch
        self._idle_seconds = idle_seconds
        self._on_pruned = on_pruned
        self.passes = 0

    async def run(self) -> None:
        while True:
            try:
                counts = await asyncio.to_thread(
                    prune_batch, self._database, time.time() - self.keep_seconds, self._batch
                )
            except Exception as exc:
                log.warning("retention could not remove old runs this time: %s", exc)
                counts = PruneCounts()
            self.passes += 1
            if counts.runs:
                log.info("retention removed %s", ", ".join(f"{v} {k}" for k, v in counts.as_dict().items()))
                if self._on_pruned is not None:
                    self._on_pruned(counts)
            await asyncio.sleep(BACKLOG_PAUSE_SECONDS if counts.runs >= self._batch else self._idle_seconds)
