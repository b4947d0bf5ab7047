"""One subscription point per process: committed events fan out to every interested subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from runctl_server.store.records import LoggedEvent

Predicate = Callable[[LoggedEvent], bool]


class Subscription:
    """A bounded queue of committed events; `overflowed` is set when the subscriber fell too far behind."""

    def __init__(self, hub: EventHub, predicate: Predicate, maxsize: int) -> None:
        self._hub = hub
        self.predicate = predicate
        # None wakes a subscriber that waits on an empty queue: the hub closed.
        self.queue: asyncio.Queue[LoggedEvent | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def push(self, event: LoggedEvent) -> None:
        if self.overflowed or self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Memory stays bounded: the subscriber resumes from the event log by its last sequence.
            self.overflowed = True
            self._hub.cut_off += 1

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def end(self) -> None:
        """The server is shutting down: the subscriber stops at once (it resumes elsewhere by cursor)."""
        self.closed = True
        if not self.queue.full():
            self.queue.put_nowait(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventHub:
    """Delivers events in sequence order, only after they are committed."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        # Called with every event as it is published, before the subscribers get it (caches).
        self.observers: list[Callable[[LoggedEvent], None]] = []
        # Whether each observer holds anything an event could change (while none does and nobody
        # subscribes, the relay need not read other processes' events).
        self.observer_wants: list[Callable[[], bool]] = []
        self.last_sequence = 0
        self.closed = False
        # Subscribers ended for falling too far behind, since the start.
        self.cut_off = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def wanted(self) -> bool:
        """Whether anyone here needs to see events now: a subscriber, or an observer holding state."""
        return bool(self._subscriptions) or any(wants() for wants in self.observer_wants)

    def subscribe(self, predicate: Predicate, maxsize: int = 10_000) -> Subscription:
        subscription = Subscription(self, predicate, maxsize)
        self._subscriptions.add(subscription)
        if self.closed:
            subscription.end()
        return subscription

    def close(self) -> None:
        """End every subscription, now and to come (the server stops accepting streams)."""
        self.closed = True
        for subscription in tuple(self._subscriptions):
            subscription.end()

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: Iterable[LoggedEvent]) -> None:
        for event in events:
            self.last_sequence = max(self.last_sequence, event.sequence)
            for observe in self.observers:
                observe(event)
            for subscription in tuple(self._subscriptions):
                if subscription.predicate(event):
                    subscription.push(event)
