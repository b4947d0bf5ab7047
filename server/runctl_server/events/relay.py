"""Feeds the hub every committed event in sequence order: this process's own commits as they happen,
and the commits of other processes on the same database, read from the event log when a notification
says they exist. The event table is the truth; notifications only wake the relay.

The writer's sequence numbers become visible in order (see store/writer.py), so when this process
commits events from N on, everything below N is already in the table: the relay reads any part of it
it has not published yet before publishing its own, and the hub never skips or repeats a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from runctl_server.events.hub import EventHub
from runctl_server.store import event_log
from runctl_server.store.reads import Reader
from runctl_server.store.records import LoggedEvent

log = logging.getLogger(__name__)

READ_PAGE = 2000


async def _nothing_in_flight() -> None:
    return None


class EventRelay:
    def __init__(self, hub: EventHub, reader: Reader) -> None:
        self._hub = hub
        self._reader = reader
        self._queue: asyncio.Queue[Sequence[LoggedEvent] | int] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # True while the relay task works on an item: the fast path must not overtake it.
        self._busy = False
        self.read_from_log = 0
        self._announced = 0
        # The highest sequence this process committed itself (the writer's): those events reach the
        # relay by `local`, which also reads any gap below them, so a notification up to there (this
        # process's own, echoed back) needs no read.
        self.committed_here: Callable[[], int] = lambda: 0
        # Waits until this process's commit in progress (if any) has reached `local`: its NOTIFY can
        # arrive first, and reading those events back from the log would be wasted work.
        self.local_settled: Callable[[], Awaitable[None]] = _nothing_in_flight

    @property
    def published(self) -> int:
        return self._hub.last_sequence

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="runctl-event-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def local(self, events: Sequence[LoggedEvent]) -> None:
        """The writer's callback: events this process just committed."""
        if not events:
            return
        if not self._busy and self._queue.empty() and events[0].sequence == self.published + 1:
            self._hub.publish(events)  # the common case: nothing of others' in between
            return
        self._queue.put_nowait(events)

    def committed_through(self, sequence: int) -> None:
        """Another process committed events up to `sequence`."""
        if sequence > self.published and sequence > self.committed_here():
            if not self._announced:
                self._queue.put_nowait(sequence)
            # One queued read covers every notification that comes before the relay gets to it.
            self._announced = max(self._announced, sequence)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            self._busy = True
            try:
                if isinstance(item, int):
                    await self._other_commits(item)
                    continue
                first = item[0].sequence
                if first > self.published + 1:
                    await self._catch_up(first - 1)
                self._hub.publish([event for event in item if event.sequence > self.published])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not relay events; watchers catch up from the log")
            finally:
                self._busy = not self._queue.empty()

    def _known(self, through: int) -> bool:
        """Whether every event up to `through` is published or on its way through `local` (which
        reads any gap below its own events first)."""
        return through <= self.published or through <= self.committed_here()

    async def _other_commits(self, through: int) -> None:
        # Notifications pile up under load: the newest one covers the others.
        through, self._announced = max(through, self._announced), 0
        if self._known(through):
            return
        await self.local_settled()
        if self._known(through):
            return
        await self._catch_up(through)

    async def _catch_up(self, through: int) -> None:
        """Publish everything up to `through` that is not published yet, from the log when wanted."""
        if not self._hub.wanted():
            # Nobody here follows events or keeps anything they would change: the log is the truth,
            # and a watcher that subscribes later catches up from it (it subscribes before reading).
            self._hub.last_sequence = max(self._hub.last_sequence, through)
            return
        await self._read_through(through)

    async def _read_through(self, through: int) -> None:
        while self.published < through:
            after = self.published
            events = await event_log.events_between(
                self._reader, after=after, through=through, limit=READ_PAGE
            )
            self.read_from_log += len(events)
            self._hub.publish([event for event in events if event.sequence > self.published])
            if len(events) < READ_PAGE:
                # Numbers missing from the table were removed (cleared batches): nothing to send.
                self._hub.last_sequence = max(self._hub.last_sequence, through)
