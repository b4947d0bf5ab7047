"""The clock the server reads and sleeps on: the system's, or one a test moves by hand.

A leaf module (it imports nothing of runctl_server), so every layer may take a Clock. Timers, the
API-key snapshot and other time-driven parts read `now()`/`monotonic()` and wait with `sleep()`
through the clock they were given, so an in-process test can advance time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Wall time, monotonic time and sleeping, as one source."""

    def now(self) -> float:
        """Seconds since the epoch (time.time())."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (time.monotonic())."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of this clock's time."""
        ...

    def sleep_until(self, deadline: float) -> Awaitable[None]:
        """Done once `now()` reaches `deadline`. Taking the moment rather than a duration leaves no
        gap between reading the clock and starting to wait in which the time could move."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def sleep_until(self, deadline: float) -> Awaitable[None]:
        return asyncio.sleep(max(deadline - time.time(), 0.0))


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that stands still until `advance` moves it; sleepers wake when their time comes.

    It starts at the real time, so timestamps made from the system clock (a delay node's wake
    time) and this clock's agree until the test moves it. `advance` may be called from any thread:
    the server under test runs its event loop in another one.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._monotonic = 0.0
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if seconds <= 0:
                future.set_result(None)
            else:
                self._sleepers.append((self._monotonic + seconds, loop, future))
        await future

    def sleep_until(self, deadline: float) -> Awaitable[None]:
        # Registered now, not when first awaited, and by the moment itself: an advance from the test's
        # thread between the caller's reading of now() and its wait cannot make it wake late.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if deadline <= self._now:
                future.set_result(None)
            else:
                self._sleepers.append(
                    (self._monotonic + (deadline - self._now), asyncio.get_running_loop(), future)
                )
        return future

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake every sleeper whose time has come."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds
            self._monotonic += seconds
            due = [entry for entry in self._sleepers if entry[0] <= self._monotonic]
            self._sleepers = [entry for entry in self._sleepers if entry[0] > self._monotonic]
        for _, loop, future in due:
            loop.call_soon_threadsafe(_wake, future)

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting: a test can wait until the server is asleep before advancing."""
        with self._lock:
            return sum(1 for _, _, future in self._sleepers if not future.done())


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled sleep stays cancelled
        future.set_result(None)
