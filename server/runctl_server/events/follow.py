"""Following the event log: catch up from the table, then go live from the hub, with no gap and no
duplicate, bounded memory, and heartbeats on quiet streams.

The order matters: a follower subscribes to the hub before it reads the table, so an event committed
while the table is being read is in both places; it is sent once, because the follower only sends
events with a sequence above the last one it sent (its cursor). The hub publishes in commit order, so
live events arrive in sequence order too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from runctl_server.errors import Aborted, InvalidArgument, Unavailable
from runctl_server.events.hub import EventHub, Subscription
from runctl_server.store import event_log
from runctl_server.store.reads import Reader
from runctl_server.store.records import LoggedEvent

CATCH_UP_PAGE = 500
MAX_EVENTS_PER_MESSAGE = 500
TERMINAL_EXECUTION_EVENTS = frozenset({"EXECUTION_COMPLETED", "EXECUTION_FAILED", "EXECUTION_STOPPED"})


@dataclass(frozen=True)
class EventFilter:
    """Which events a follower wants; every field narrows (AND), empty means any."""

    workspace_id: str
    workflow_id: str = ""
    execution_id: str = ""
    batch_id: str = ""
    types: frozenset[str] = field(default_factory=frozenset)
    without_node_events: bool = False

    def matches(self, event: LoggedEvent) -> bool:
        return (
            event.workspace_id == self.workspace_id
            and (not self.workflow_id or event.workflow_id == self.workflow_id)
            and (not self.execution_id or event.execution_id == self.execution_id)
            and (not self.batch_id or event.batch_id == self.batch_id)
            and (not self.types or event.type in self.types)
            and not (self.without_node_events and event.type.startswith("NODE_"))
        )


async def read_events(reader: Reader, flt: EventFilter, after: int, limit: int) -> list[LoggedEvent]:
    """Matching events of the log with a sequence above `after`, oldest first, at most `limit`."""
    return await event_log.matching_events(
        reader,
        flt.workspace_id,
        after=after,
        limit=limit,
        workflow_id=flt.workflow_id,
        execution_id=flt.execution_id,
        batch_id=flt.batch_id,
        types=flt.types,
        without_node_events=flt.without_node_events,
    )


@dataclass(frozen=True)
class Delivery:
    """What a follower hands its stream: events (oldest first) or, when quiet, a heartbeat."""

    events: list[LoggedEvent]
    cursor: int

    @property
    def heartbeat(self) -> bool:
        return not self.events


def heartbeat_seconds(requested: float, default: float = 15.0) -> float:
    """Unset or 0 means the default; otherwise clamped to [1 s, 5 min]."""
    if requested < 0:
        raise InvalidArgument.single("heartbeat_interval", "must not be negative", reason="FIELD_INVALID")
    return default if requested == 0 else min(max(requested, 1.0), 300.0)


def _shutting_down(cursor: int) -> Unavailable:
    return Unavailable(
        f"the server is shutting down: reconnect (to another replica) with after_sequence={cursor}",
        reason="SHUTTING_DOWN",
        metadata={"cursor": str(cursor)},
    )


class Follower:
    """One watcher's view of the log. Use as an async context manager, then iterate `deliveries`."""

    def __init__(
        self, hub: EventHub, reader: Reader, flt: EventFilter, *, buffer: int, heartbeat: float
    ) -> None:
        self._hub = hub
        self._reader = reader
        self.filter = flt
        self._buffer = buffer
        self._heartbeat = heartbeat
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> Follower:
        self._subscription = self._hub.subscribe(self.filter.matches, maxsize=self._buffer)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._subscription is not None:
            self._subscription.close()

    async def oldest_retained(self) -> int:
        """Events at or below this sequence may have been removed from the log (0: none ever were)."""
        if self.filter.execution_id or self.filter.batch_id:
            return 0  # a run's or a batch's events are only ever removed together with it
        return await event_log.pruned_through(self._reader)

    async def _catch_up(self, cursor: int) -> AsyncIterator[list[LoggedEvent]]:
        while True:
            events = await read_events(self._reader, self.filter, cursor, CATCH_UP_PAGE)
            if not events:
                return
            yield events
            cursor = events[-1].sequence
            if len(events) < CATCH_UP_PAGE:
                return

    async def deliveries(self, cursor: int) -> AsyncIterator[Delivery]:
        """Every matching event after `cursor`, in order, then live ones as they are committed."""
        subscription = self._subscription
        assert subscription is not None, "use the follower as an async context manager"
        async for events in self._catch_up(cursor):
            if subscription.closed:
                raise _shutting_down(cursor)
            for start in range(0, len(events), MAX_EVENTS_PER_MESSAGE):
                page = events[start : start + MAX_EVENTS_PER_MESSAGE]
                cursor = page[-1].sequence
                yield Delivery(page, cursor)
        queue = subscription.queue
        while True:
            if subscription.closed:
                raise _shutting_down(cursor)
            if queue.empty() and subscription.overflowed:
                raise Aborted(
                    f"this watcher fell more than {self._buffer} events behind and was cut off; "
                    f"reconnect with after_sequence={cursor} to catch up from the event log",
                    reason="WATCHER_TOO_SLOW",
                    metadata={"cursor": str(cursor)},
                )
            try:
                # asyncio.timeout, not wait_for: a cancel arriving as the queue answers must not be lost.
                async with asyncio.timeout(self._heartbeat):
                    first = await queue.get()
            except TimeoutError:
                # Nothing matched up to the hub's last published sequence: the cursor may move there.
                if queue.empty() and not subscription.overflowed:
                    cursor = max(cursor, self._hub.last_sequence)
                yield Delivery([], cursor)
                continue
            if first is None:
                raise _shutting_down(cursor)
            batch = [first]
            while len(batch) < MAX_EVENTS_PER_MESSAGE and not queue.empty():
                following = queue.get_nowait()
                if following is None:
                    break
                batch.append(following)
            fresh = [event for event in batch if event.sequence > cursor]
            if fresh:
                cursor = fresh[-1].sequence
                yield Delivery(fresh, cursor)
