"""Durable timers: the truth is node_states.wake_at; memory holds only what fires in the next minute."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from runctl_server.clock import SYSTEM_CLOCK, Clock
from runctl_server.store import executions

if TYPE_CHECKING:
    from runctl_server.engine.persistence import RunStore

log = logging.getLogger(__name__)

HORIZON_SECONDS = 60.0
REFRESH_SECONDS = 20.0


class TimerService:
    """Fires (execution_id, node_key) at its wake time, late ones at once, after restarts too."""

    def __init__(self, store: RunStore, on_due: Callable[[str, str, float], None]) -> None:
        self._store = store
        # Told (execution_id, node_key, wake_at) of each timer that falls due.
        self._on_due = on_due
        self._heap: list[tuple[float, str, str]] = []
        self._known: set[tuple[float, str, str]] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loaded_until = 0.0
        # This replica's id: timers of runs that another replica drives are that replica's business.
        self.owner: Callable[[], str] = lambda: "local"
        # With replicas a parked run's timers are every replica's to fire, but only the replica that
        # parked it has them in memory: the others look at the table this often, and at once when a
        # replica leaves or dies.
        self.refresh_seconds = REFRESH_SECONDS
        self._refresh_now = False
        # What "now" is and how the loop waits for the next wake time: a test may move it by hand.
        self.clock: Clock = SYSTEM_CLOCK

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="runctl-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def refresh_soon(self) -> None:
        """Read the due timers from the table again now (another replica left or died)."""
        self._refresh_now = True
        self._wakeup.set()

    def schedule(self, wake_at: float, execution_id: str, node_key: str) -> None:
        """Called after the wake time is committed; later timers are picked up by the next refresh."""
        if wake_at > self._loaded_until:
            return
        entry = (wake_at, execution_id, node_key)
        if entry in self._known:
            return
        self._known.add(entry)
        heapq.heappush(self._heap, entry)
        if self._heap[0] == entry:
            self._wakeup.set()

    async def _refresh(self, at: float) -> None:
        until = at + HORIZON_SECONDS
        # Widen the window first, so timers committed while the query runs are scheduled directly.
        self._loaded_until = until
        rows = await executions.due_timers(self._store.reader, until, self.owner())
        for row in rows:
            self.schedule(row.wake_at, row.execution_id, row.node_key)

    async def _sleep_until(self, deadline: float) -> None:
        """Until the clock reaches `deadline`, or sooner when schedule() or refresh_soon() wakes us."""
        if self.clock is SYSTEM_CLOCK:  # the common case, without a second task
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(deadline - self.clock.now(), 0.0))
            return
        waits = {
            asyncio.ensure_future(self._wakeup.wait()),
            asyncio.ensure_future(self.clock.sleep_until(deadline)),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _loop(self) -> None:
        next_refresh = 0.0
        while True:
            try:
                now = self.clock.now
                if now() >= next_refresh or self._refresh_now:
                    self._refresh_now = False
                    # One reading for the window and the next refresh: time that passes during the read
                    # (a test may move the clock meanwhile) brings the next refresh nearer, never later.
                    refreshed_at = now()
                    await self._refresh(refreshed_at)
                    next_refresh = refreshed_at + self.refresh_seconds
                while self._heap and self._heap[0][0] <= now():
                    entry = heapq.heappop(self._heap)
                    self._known.discard(entry)
                    wake_at, execution_id, node_key = entry
                    self._on_due(execution_id, node_key, wake_at)
                deadline = min(next_refresh, self._heap[0][0]) if self._heap else next_refresh
                self._wakeup.clear()
                await self._sleep_until(deadline)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer loop error; retrying")
                await asyncio.sleep(1.0)
