"""Who is calling: an API key (x-api-key or `authorization: Bearer`) names the caller's workspace.

Both faces authenticate here: the gRPC AuthInterceptor (api/interceptors.py), the HTTP middleware
(http/app.py) and the Socket.IO handshake (http/socketio_bridge.py). With no key in the database the
server is in dev mode: loopback callers act in the default workspace, keyed or not, and nobody else
is served. Once a key exists every caller needs a valid one, loopback included.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

from sqlalchemy.engine import Engine as DatabaseEngine

from runctl_server.clock import SYSTEM_CLOCK, Clock
from runctl_server.errors import Unauthenticated
from runctl_server.observe.calls import note_caller
from runctl_server.store.api_keys import KeySnapshot, hash_key, key_snapshot
from runctl_server.store.tables import DEFAULT_WORKSPACE_ID

T = TypeVar("T")
log = logging.getLogger(__name__)

# Revoking a key with `runctl keys revoke` (another process) takes effect within this many seconds.
SNAPSHOT_SECONDS = 1.0
DEV_MODE_MESSAGE = "no API keys: dev mode, loopback only"


@functools.lru_cache(maxsize=1024)
def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)  # asked on every call; a connection's peer string is the same for each
def grpc_peer_is_loopback(peer: str) -> bool:
    """gRPC peers look like `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000` or `unix:/path` (local)."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    if kind == "ipv6":
        return is_loopback_host(rest.rpartition("]")[0].lstrip("["))
    if kind == "ipv4":
        return is_loopback_host(rest.rpartition(":")[0])
    return False


def presented_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The key the caller sent: `x-api-key`, else `authorization: Bearer <key>`."""
    bearer = None
    for name, value in metadata:
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if name.lower() == "x-api-key" and text.strip():
            return text.strip()
        if name.lower() == "authorization":
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return bearer


class Authenticator:
    """Resolves credentials to a workspace against a snapshot of the keys no older than a second."""

    def __init__(
        self,
        database: DatabaseEngine,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._database = database
        self._snapshot_seconds = snapshot_seconds
        self._clock = clock
        self._snapshot: KeySnapshot | None = None
        self._taken_at = 0.0
        self._lock = asyncio.Lock()

    async def snapshot(self) -> KeySnapshot:
        snapshot = self._snapshot
        if snapshot is not None and self._clock.monotonic() - self._taken_at < self._snapshot_seconds:
            return snapshot
        async with self._lock:  # one read however many callers find the snapshot stale together
            if self._snapshot is None or self._clock.monotonic() - self._taken_at >= self._snapshot_seconds:
                self._snapshot = await asyncio.to_thread(key_snapshot, self._database)
                self._taken_at = self._clock.monotonic()
            return self._snapshot

    async def dev_mode(self) -> bool:
        return not (await self.snapshot()).any_key

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]], *, loopback: bool) -> str:
        """The caller's workspace id; Unauthenticated when the credentials do not admit the caller."""
        snapshot = await self.snapshot()
        if not snapshot.any_key:
            if loopback:
                note_caller(DEFAULT_WORKSPACE_ID, None)
                return DEFAULT_WORKSPACE_ID
            raise Unauthenticated(
                f"{DEV_MODE_MESSAGE}: create a key (runctl keys create) to serve others",
                reason="LOOPBACK_ONLY",
            )
        key = presented_key(metadata)
        if key is None:
            raise Unauthenticated(
                "an API key is required: send x-api-key or authorization: Bearer <key>",
                reason="API_KEY_REQUIRED",
            )
        # Looked up by the SHA-256 of what was presented: the time a lookup takes can only tell
        # something about that hash, and a key cannot be worked back from its hash (keys are 256
        # random bits), so nothing about any stored key is learned. One lookup however many keys
        # there are, which matters since every open stream checks its key again each second.
        found = snapshot.active.get(hash_key(key))
        if found is None:
            raise Unauthenticated("the API key is not valid (unknown or revoked)", reason="API_KEY_INVALID")
        note_caller(found[1], found[0])
        return found[1]

    async def until_refused(
        self, metadata: Iterable[tuple[str, str | bytes]], *, loopback: bool
    ) -> Unauthenticated:
        """Waits until credentials that were admitted no longer are (a revoked key; or, once a first
        key exists, a keyless dev-mode caller) and returns the refusal. A check that fails (the
        database briefly unreachable) is tried again at the next period rather than given up."""
        held = tuple(metadata)
        while True:
            await self._clock.sleep(self._snapshot_seconds)
            try:
                await self.authenticate(held, loopback=loopback)
            except Unauthenticated as refusal:
                return refusal
            except Exception as exc:  # never the credentials themselves in the log
                log.warning(
                    "could not check an open stream's credentials (%s); trying again", type(exc).__name__
                )

    async def guarded(
        self, messages: AsyncIterator[T], metadata: Iterable[tuple[str, str | bytes]], *, loopback: bool
    ) -> AsyncIterator[T]:
        """`messages` for as long as the credentials admit the caller: a stream opened with a key
        that is then revoked ends (Unauthenticated) within a second or so, idle or not.

        A stream waits for its next message almost all of the time; only then is it woken, by
        cancelling its task, never while its last message is being sent. That cancel is withdrawn
        once it has done its work, and a cancel from elsewhere (the caller went away) still wins."""
        held = tuple(metadata)
        task = asyncio.current_task()
        waiting = False
        woken = False
        refusal: Unauthenticated | None = None

        async def watch() -> None:
            nonlocal refusal, woken
            refusal = await self.until_refused(held, loopback=loopback)
            if waiting and task is not None:
                woken = True
                task.cancel()

        watcher = asyncio.create_task(watch())
        iterator = aiter(messages)
        try:
            while refusal is None:
                waiting = True
                try:
                    message = await anext(iterator)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not woken or task is None or task.uncancel() > 0:
                        raise
                    break
                finally:
                    waiting = False
                if refusal is not None:
                    # Refused while this message was being fetched: it is not sent. The wake-up may
                    # have been absorbed on the way (asyncio.wait_for does that): withdraw it.
                    if woken and task is not None and task.cancelling() > 0:
                        task.uncancel()
                    break
                yield message
            assert refusal is not None  # only a refusal (set before the wake-up) ends the loop here
            raise Unauthenticated(f"{refusal.message}; the stream was ended", reason="CREDENTIALS_REFUSED")
        finally:
            watcher.cancel()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
