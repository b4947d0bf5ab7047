"""ManualClock: time stands still until a test moves it, and sleepers wake when their time comes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from runctl_server.clock import SYSTEM_CLOCK, ManualClock


def test_it_reads_what_it_was_moved_to() -> None:
    clock = ManualClock(start=1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (1002.5, 2.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_a_sleeper_wakes_when_the_clock_reaches_its_time_not_before() -> None:
    clock = ManualClock()
    woke: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(nap("short", 1)), asyncio.create_task(nap("long", 10))]
    await asyncio.sleep(0)
    assert clock.sleepers == 2
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.5)
    await tasks[0]
    assert woke == ["short"] and clock.sleepers == 1
    clock.advance(100)
    await tasks[1]
    assert woke == ["short", "long"]


async def test_it_can_be_moved_from_another_thread() -> None:
    """The server under test runs its loop in a thread of its own; the test moves time from its own."""
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    mover = threading.Thread(target=clock.advance, args=(60,))
    mover.start()
    mover.join()
    await asyncio.wait_for(sleeper, 5)


async def test_a_cancelled_sleep_stays_cancelled() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert clock.sleepers == 0
    clock.advance(10)  # waking a cancelled sleep is harmless


async def test_the_system_clock_sleeps_for_real() -> None:
    before = SYSTEM_CLOCK.monotonic()
    await SYSTEM_CLOCK.sleep(0.01)
    assert SYSTEM_CLOCK.monotonic() > before and SYSTEM_CLOCK.now() > 1e9
