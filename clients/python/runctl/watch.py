"""Following a watch stream across reconnects, for the sync and the asyncio client.

Every message of WatchExecution, WatchBatch and StreamEvents carries a `cursor`; reopening the
stream with `after_sequence = cursor` continues exactly after that message, so a watcher that
reconnects misses nothing and sees nothing twice. A stream is reopened when it fails with
UNAVAILABLE (network trouble, a server restart or shutdown) or with RESOURCE_EXHAUSTED / ABORTED
carrying the server's word that the watcher should resume from its cursor (a slow consumer cut off).
Attempts without any message in between are bounded by a RetryPolicy.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol, TypeVar

import grpc

from runctl.connection import RetryPolicy
from runctl.errors import RpcFailure, UnavailableError, from_rpc_error
from runctl.v1 import error_pb2

__all__ = ["RESUME_REASONS", "should_reconnect"]

# ErrorInfo reasons by which a server tells a watcher to reconnect from its last cursor: the
# runctl.v1.ErrorReason values for that, named as ErrorInfo names them (without the prefix).
RESUME_REASONS = frozenset(
    error_pb2.ErrorReason.Name(value).removeprefix("ERROR_REASON_")
    for value in (error_pb2.ERROR_REASON_WATCHER_TOO_SLOW,)
)
# ErrorInfo metadata keys that carry the sequence to resume after.
_RESUME_METADATA = ("cursor", "after_sequence", "afterSequence", "resume_after_sequence")
# Failing that, the status message: "fell too far behind; reconnect with after_sequence=...".
_RESUME_TEXT = re.compile(r"cursor|reconnect|resume|after_sequence|too far behind|too slow", re.IGNORECASE)


def should_reconnect(error: RpcFailure) -> bool:
    """Whether a failed watch stream should be reopened from its last cursor."""
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED):
        return (
            error.reason in RESUME_REASONS
            or any(key in error.metadata for key in _RESUME_METADATA)
            or bool(_RESUME_TEXT.search(error.message))
        )
    return False


class _Cursored(Protocol):
    @property
    def cursor(self) -> int: ...


R = TypeVar("R", bound=_Cursored, covariant=True)


class SyncStream(Protocol[R]):
    """A server-streaming call of a grpc.Channel: iterate the messages, cancel when done."""

    def __iter__(self) -> Iterator[R]: ...

    def cancel(self) -> bool: ...


class AsyncStream(Protocol[R]):
    """A server-streaming call of a grpc.aio.Channel."""

    def __aiter__(self) -> AsyncIterator[R]: ...

    def cancel(self) -> bool: ...


class Reconnects:
    """The cursor of one logical watch, and how many streams in a row failed without a message.

    A watch gives up (raises) once `policy.max_attempts` streams in a row ended in error before
    delivering anything; a stream that delivered messages starts the count afresh.
    """

    def __init__(self, after_sequence: int | None, policy: RetryPolicy, target: str, method: str) -> None:
        self.cursor = after_sequence
        self.policy = policy
        self.target = target
        self.method = method
        self.failures = 0
        self.reconnects = 0
        self._progressed = False

    def opened(self) -> None:
        self._progressed = False

    def received(self, message: _Cursored) -> None:
        self.cursor = message.cursor
        self._progressed = True
        self.failures = 0

    def failed(self, error: grpc.RpcError) -> float | RpcFailure:
        """Seconds to wait before reopening, or the error to raise."""
        if not self._progressed:
            self.failures += 1
        failure = from_rpc_error(
            error, target=self.target, method=self.method, attempts=max(self.failures, 1)
        )
        if not should_reconnect(failure):
            return failure
        if self.failures >= self.policy.max_attempts:
            if isinstance(failure, UnavailableError):
                failure.message = (
                    f"cannot reach runctl at {self.target} ({self.failures} attempts): {failure.message}"
                )
            return failure
        self.reconnects += 1
        return self.policy.backoff(max(self.failures, 1))


def follow(
    open_stream: Callable[[int | None], SyncStream[R]],
    reconnects: Reconnects,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[R]:
    """Yield the messages of `open_stream(after_sequence)`, reopening it from the cursor as needed."""
    while True:
        call = open_stream(reconnects.cursor)
        reconnects.opened()
        try:
            for message in call:
                reconnects.received(message)
                yield message
            return
        except grpc.RpcError as error:
            outcome = reconnects.failed(error)
            if isinstance(outcome, RpcFailure):
                raise outcome from None
        finally:
            call.cancel()
        sleep(outcome)


async def follow_async(
    open_stream: Callable[[int | None], AsyncStream[R]],
    reconnects: Reconnects,
) -> AsyncIterator[R]:
    """The asyncio twin of `follow`."""
    while True:
        call = open_stream(reconnects.cursor)
        reconnects.opened()
        try:
            async for message in call:
                reconnects.received(message)
                yield message
            return
        except grpc.RpcError as error:
            outcome = reconnects.failed(error)
            if isinstance(outcome, RpcFailure):
                raise outcome from None
        finally:
            call.cancel()
        await asyncio.sleep(outcome)
