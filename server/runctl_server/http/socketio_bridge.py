"""Socket.IO on the HTTP port (the local runner API): `execution-update`, `batch-update` and `node-execution`.

A client takes everything of its workspace by default (room `all`). It may narrow that down:
`emit("subscribe", {"executionId": ...})` or `{"batchId": ...}` joins that run's or batch's room
(a batch's room also gets the execution and node events of its runs), leaves `all`, pushes the
current state at once (one `execution-update` or `batch-update`) and acks `{"success": true, ...}`;
`unsubscribe` with the same body (or none: every subscription) leaves it, and a client left with no
subscription takes everything again. Unknown ids ack `{"success": false, "message", "error"}`.

The messages come from the event log, in commit order, through one follower per workspace that has
clients (none at all while nobody listens): a follower that falls behind resumes from the log by its
cursor, so no update is lost or sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import engineio
import socketio
from starlette.types import ASGIApp

from runctl.v1 import batch_pb2, execution_pb2
from runctl_server.api import convert
from runctl_server.api.auth import Authenticator, is_loopback_host
from runctl_server.api.context import acting_in
from runctl_server.engine.engine import Engine
from runctl_server.errors import Aborted, InvalidArgument, NotFound, RunctlError
from runctl_server.events.follow import EventFilter
from runctl_server.http.bridge import Services
from runctl_server.http.errors import runner_error
from runctl_server.http.live import (
    BATCH_UPDATE,
    EXECUTION_UPDATE,
    LIVE_EVENT_TYPES,
    LiveUpdates,
    Update,
    execution_update,
)
from runctl_server.http.runner_shapes import RunStatus, batch_update

log = logging.getLogger(__name__)

FEED_HEARTBEAT_SECONDS = 30.0
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def origin_allowed(origin: str | None, environ: Mapping[str, Any]) -> bool:
    """Browsers may connect from the server's own origin or from a page on this machine (a local UI
    on another port); pages of other sites may not read the live updates."""
    if not origin:
        return True
    parts = urlsplit(origin)
    host = parts.hostname or ""
    return host in LOOPBACK_HOSTS or host.startswith("127.") or parts.netloc == environ.get("HTTP_HOST")


def credentials(environ: Mapping[str, Any], auth: Any) -> dict[str, str]:
    """The caller's credentials as gRPC metadata: the handshake's headers, or the Socket.IO `auth`
    object (`{"apiKey": ...}` or `{"token": ...}`) for browsers, which cannot set headers."""
    metadata: dict[str, str] = {}
    if key := environ.get("HTTP_X_API_KEY"):
        metadata["x-api-key"] = str(key)
    if bearer := environ.get("HTTP_AUTHORIZATION"):
        metadata["authorization"] = str(bearer)
    if isinstance(auth, Mapping):
        if isinstance(auth.get("apiKey"), str):
            metadata["x-api-key"] = auth["apiKey"]
        if isinstance(auth.get("token"), str):
            metadata["authorization"] = f"Bearer {auth['token']}"
    return metadata


class _EngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO that keeps its background tasks (pings, the client monitor), so a shutdown can end
    them instead of leaving them pending on the event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: set[asyncio.Task[Any]] = set()

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = super().start_background_task(target, *args, **kwargs)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


class _SocketIO(socketio.AsyncServer):  # type: ignore[misc]
    def _engineio_server_class(self) -> type[_EngineIO]:
        return _EngineIO


@dataclass
class Client:
    """One connected socket: its workspace, credentials and subscriptions (room names)."""

    workspace_id: str
    metadata: dict[str, str]
    rooms: set[str] = field(default_factory=set)
    # Disconnects the socket when its key is revoked.
    guard: asyncio.Task[None] | None = None


def _room(workspace_id: str, kind: str, ident: str = "") -> str:
    return f"{workspace_id}|{kind}|{ident}"


class SocketBridge:
    """The Socket.IO server and the event-log feeds that drive it."""

    def __init__(self, engine: Engine, services: Services, authenticator: Authenticator) -> None:
        self._engine = engine
        self._services = services
        self._authenticator = authenticator
        self.server = _SocketIO(
            async_mode="asgi", cors_allowed_origins=origin_allowed, logger=False, engineio_logger=False
        )
        self._clients: dict[str, Client] = {}
        self._feeds: dict[str, asyncio.Task[None]] = {}
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)
        self.server.on("subscribe", self._subscribe)
        self.server.on("unsubscribe", self._unsubscribe)
        # Lives as long as the engine: its stop cancels this, which stops Socket.IO's own tasks.
        engine.in_background(self._hold_until_stopped())

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """`app` with Socket.IO in front of it at /socket.io/."""
        return cast(ASGIApp, socketio.ASGIApp(self.server, other_asgi_app=app, socketio_path="socket.io"))

    async def _hold_until_stopped(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            for task in self._feeds.values():
                task.cancel()
            self._feeds.clear()
            eio: _EngineIO = self.server.eio
            # The HTTP server has stopped already: nothing can be sent, only state let go of.
            for sock in list(eio.sockets.values()):
                with contextlib.suppress(Exception):
                    await sock.close(wait=False, abort=True)
            eio.sockets = {}
            await self.server.shutdown()
            for task in list(eio.tasks):
                task.cancel()

    # -- clients ------------------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        metadata = credentials(environ, auth)
        # engineio's ASGI environ says REMOTE_ADDR 127.0.0.1 for everyone: the peer is in the scope.
        client = (environ.get("asgi.scope") or {}).get("client")
        loopback = is_loopback_host(client[0] if client else None)
        try:
            workspace_id = await self._authenticator.authenticate(metadata.items(), loopback=loopback)
        except RunctlError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        guard = self._engine.in_background(self._disconnect_when_refused(sid, metadata, loopback))
        self._clients[sid] = Client(workspace_id, metadata, guard=guard)
        await self.server.enter_room(sid, _room(workspace_id, "all"))
        if workspace_id not in self._feeds:
            task = self._engine.in_background(self._feed(workspace_id))
            self._feeds[workspace_id] = task

    async def _disconnect_when_refused(self, sid: str, metadata: dict[str, str], loopback: bool) -> None:
        refusal = await self._authenticator.until_refused(metadata.items(), loopback=loopback)
        if sid in self._clients:
            await self.server.emit("auth-error", {"success": False, "message": refusal.message}, to=sid)
            await self.server.disconnect(sid)

    async def _disconnect(self, sid: str, *_reason: Any) -> None:
        client = self._clients.pop(sid, None)
        if client is None:
            return
        if client.guard is not None and client.guard is not asyncio.current_task():
            client.guard.cancel()
        if not any(other.workspace_id == client.workspace_id for other in self._clients.values()):
            task = self._feeds.pop(client.workspace_id, None)
            if task is not None:
                task.cancel()

    async def _subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        client = self._clients.get(sid)
        if client is None:
            return {"success": False, "message": "not connected"}
        try:
            with acting_in(client.workspace_id):
                room, ident, current = await self._target(client, data)
        except RunctlError as exc:
            return runner_error(exc)
        if room not in client.rooms:
            client.rooms.add(room)
            await self.server.enter_room(sid, room)
            await self.server.leave_room(sid, _room(client.workspace_id, "all"))
        await self.server.emit(current.name, current.data, to=sid)
        return {"success": True, ident: current.data[ident]}

    async def _unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        client = self._clients.get(sid)
        if client is None:
            return {"success": False, "message": "not connected"}
        rooms = set(client.rooms)
        if isinstance(data, Mapping) and data:
            rooms = {room for room in rooms if room.split("|")[-1] in {str(v) for v in data.values()}}
        for room in rooms:
            client.rooms.discard(room)
            await self.server.leave_room(sid, room)
        if not client.rooms:
            await self.server.enter_room(sid, _room(client.workspace_id, "all"))
        return {"success": True}

    async def _target(self, client: Client, data: Any) -> tuple[str, str, Update]:
        """The room a `subscribe` asks for, the id's key, and the current state to push first."""
        body = data if isinstance(data, Mapping) else {}
        execution_id, batch_id = body.get("executionId"), body.get("batchId")
        if isinstance(execution_id, str) and execution_id:
            reply = await self._services.unary(
                self._services.servicers.executions.GetExecution,
                execution_pb2.GetExecutionRequest(
                    execution_id=execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC
                ),
                client.metadata,
            )
            update = Update(EXECUTION_UPDATE, execution_update(RunStatus.of(reply.execution)))
            return _room(client.workspace_id, "execution", execution_id), "executionId", update
        if isinstance(batch_id, str) and batch_id:
            found = await self._services.unary(
                self._services.servicers.batches.GetBatch,
                batch_pb2.GetBatchRequest(batch_id=batch_id),
                client.metadata,
            )
            update = Update(BATCH_UPDATE, batch_update(found.batch))
            return _room(client.workspace_id, "batch", batch_id), "batchId", update
        raise InvalidArgument.single(
            "executionId", "subscribe needs {executionId} or {batchId}", reason="FIELD_INVALID"
        )

    # -- the feed -----------------------------------------------------------------------------------

    async def _load(self, workspace_id: str, execution_id: str) -> RunStatus | None:
        try:
            view = await self._engine.queries.execution(workspace_id, execution_id, full=False)
        except NotFound:
            return None
        return RunStatus.of(convert.execution(view, full=False))

    async def _feed(self, workspace_id: str) -> None:
        """Push every live update of the workspace, from the moment its first client connected."""
        live = LiveUpdates(partial(self._load, workspace_id))
        flt = EventFilter(workspace_id, types=LIVE_EVENT_TYPES)
        cursor = self._engine.hub.last_sequence
        while True:
            try:
                async with self._engine.follower(flt, FEED_HEARTBEAT_SECONDS) as follower:
                    async for delivery in follower.deliveries(cursor):
                        for event in delivery.events:
                            for update in await live.updates(event):
                                await self._push(workspace_id, update)
                            cursor = event.sequence
                        cursor = max(cursor, delivery.cursor)
            except Aborted:
                log.warning("live updates fell behind; catching up from the event log after %d", cursor)
            except Exception:
                log.exception("live updates feed failed; resuming after %d", cursor)
                await asyncio.sleep(1.0)

    async def _push(self, workspace_id: str, update: Update) -> None:
        rooms = [_room(workspace_id, "all")]
        if update.execution_id:
            rooms.append(_room(workspace_id, "execution", update.execution_id))
        if update.batch_id:
            rooms.append(_room(workspace_id, "batch", update.batch_id))
        await self.server.emit(update.name, update.data, to=rooms)
