"""Replicas: several runctl processes on one PostgreSQL database, each run driven by exactly one.

Each replica has a row in `replicas`, renewed by a heartbeat every quarter of the lease TTL; a replica
whose row expired is dead and its runs are taken over, a fair share by each live replica, with
`FOR UPDATE SKIP LOCKED` so no run is claimed twice. Messages for a run driven elsewhere go through the
run inbox (a table: the truth) and a NOTIFY to the owner (a wake-up); the sender polls as a fallback,
and takes the run itself when its owner has died or let it go. Another replica's events reach this
process's watchers through the event relay, woken by NOTIFY.

Lease times here are the database's (store/leases.py compares with its own clock), not the engine's
Clock: replicas whose clocks disagree must still agree on who is alive, so a ManualClock cannot expire
a replica; only the pace of the heartbeat loop is this process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import Engine as DatabaseEngine

from runctl_server.engine.message_json import error_from_json, message_from_json, message_to_json
from runctl_server.engine.messages import Message, Wake
from runctl_server.engine.scheduler import Router, Scheduler
from runctl_server.errors import Unavailable
from runctl_server.events.relay import EventRelay
from runctl_server.store import event_log
from runctl_server.store.leases import (
    EVENTS_CHANNEL,
    INBOX_CHANNEL,
    ORPHANS_CHANNEL,
    REPLIES_CHANNEL,
    STATE_CHANNEL,
    TASKS_CHANNEL,
    Claim,
    LeaseStore,
)
from runctl_server.store.notify import Listener, conninfo
from runctl_server.store.reads import Reader

log = logging.getLogger(__name__)

# How often a sender looks at its message again when no answer was notified.
REPLY_POLL_SECONDS = 1.0
# How long a control call waits for the replica driving the run before it gives up.
REPLY_DEADLINE_SECONDS = 60.0
HOUSEKEEPING_SECONDS = 60.0
# Answered inbox rows are kept this long for replays, then removed.
INBOX_RETENTION_SECONDS = 3600.0


def default_replica_name(grpc_port: int) -> str:
    """`<host>:<gRPC port>`: a process restarted on its port is the same replica. With a port chosen at
    random (0) the name is made unique instead."""
    suffix = str(grpc_port) if grpc_port else f"any-{uuid.uuid4().hex[:8]}"
    return f"{socket.gethostname()}:{suffix}"


class Cluster(Router):
    """This replica's membership: heartbeat, takeover, the run inbox and the notifications."""

    def __init__(
        self,
        database: DatabaseEngine,
        scheduler: Scheduler,
        relay: EventRelay,
        reader: Reader,
        *,
        name: str,
        ttl: float,
        on_state: Callable[[str], Awaitable[None]],
        on_taken: Callable[[list[str] | None], Awaitable[None]],
        on_task: Callable[[str, str], None],
    ) -> None:
        self.name = name
        self.ttl = ttl
        self.replica_id = self._new_id()
        self._database = database
        self._store = LeaseStore(database, self.replica_id, name, ttl)
        self._scheduler = scheduler
        self._relay = relay
        self._reader = reader
        self._on_state = on_state
        self._on_taken = on_taken
        self._on_task = on_task
        self._waiting: dict[int, asyncio.Event] = {}
        self._send_order: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._takeover_now = asyncio.Event()
        self._listener = Listener(
            conninfo(database),
            {
                EVENTS_CHANNEL: self._on_events,
                INBOX_CHANNEL: self._on_inbox,
                REPLIES_CHANNEL: self._on_reply,
                STATE_CHANNEL: self._on_state_changed,
                ORPHANS_CHANNEL: self._on_orphans,
                TASKS_CHANNEL: self._on_task_created,
            },
            self._on_connect,
        )
        self.taken_over = 0
        self._live = 0
        self.heartbeats_missed = 0
        self.rejoined = 0

    def _new_id(self) -> str:
        return f"{self.name[:40]}-{uuid.uuid4().hex[:12]}"

    # -- membership -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join: forget a previous incarnation of this replica (same name: it was restarted, so it is
        dead), register, listen, and take a share of the runs nobody drives."""
        await asyncio.to_thread(self._store.forget_name, self.name)
        await asyncio.to_thread(self._store.register)
        self._listener.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._listener.connected.wait()
        await self._take_over()
        self._loop_task = asyncio.create_task(self._keep_alive(), name="runctl-replica")

    async def stop(self) -> None:
        """Leave: the runs this replica held are released, and the others are told to take them now."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            released = await asyncio.to_thread(self._store.release_all)
            log.info(
                "replica %s left the cluster; released %d runs (claims %d, messages forwarded %d, "
                "leases lost %d, runs taken over %d, rejoins %d)",
                self.replica_id,
                released,
                *self.stats.values(),
            )
        except Exception:
            log.exception("could not release this replica's runs; they are taken over after the lease TTL")
        await self._listener.stop()

    async def _keep_alive(self) -> None:
        interval = max(self.ttl / 4, 0.1)
        housekeeping_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if not await asyncio.to_thread(self._store.heartbeat):
                    await self._rejoin()
                await self._take_over()
                if loop.time() >= housekeeping_at:
                    housekeeping_at = loop.time() + HOUSEKEEPING_SECONDS
                    if await asyncio.to_thread(self._store.forget_dead):
                        self._scheduler.timers.refresh_soon()
                    await asyncio.to_thread(self._store.forget_handled, INBOX_RETENTION_SECONDS)
                    await self._on_taken(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.heartbeats_missed += 1
                log.warning("replica heartbeat failed: %s", exc)
            self._takeover_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._takeover_now.wait()

    async def _rejoin(self) -> None:
        """This replica was declared dead (it missed heartbeats for longer than the TTL, say while
        stopped): its runs have been taken over, and the fencing epochs keep what it still holds in
        memory from being committed. It joins again under a new id."""
        self.rejoined += 1
        old = self.replica_id
        self.replica_id = self._new_id()
        self._store.replica_id = self.replica_id
        await asyncio.to_thread(self._store.register)
        log.warning("replica %s was declared dead by the others; rejoined as %s", old, self.replica_id)

    async def _take_over(self) -> None:
        orphans, live = await asyncio.to_thread(self._store.orphan_count)
        if live < self._live:
            # A replica died: the timers of runs it parked were only in its memory.
            self._scheduler.timers.refresh_soon()
        self._live = live
        if not orphans:
            return
        share = math.ceil(orphans / max(live, 1))
        claimed = await asyncio.to_thread(self._store.claim_orphans, share)
        taken = [
            execution_id for execution_id, epoch in claimed if await self._scheduler.take(execution_id, epoch)
        ]
        if claimed:
            self._scheduler.timers.refresh_soon()  # the dead replica's parked runs' timers too
        if taken:
            self.taken_over += len(taken)
            log.info("took over %d runs nobody was driving", len(taken))
            await self._on_taken(taken)

    # -- Router: what the scheduler asks of the cluster -------------------------------------------------

    async def claim(self, execution_id: str) -> Claim:
        return await asyncio.to_thread(self._store.claim, execution_id)

    def forward(self, execution_id: str, owner: str, message: Message) -> None:
        self._spawn(self._forward(execution_id, owner, message))

    def nudge(self, execution_id: str, owner: str) -> None:
        self._spawn(asyncio.to_thread(self._store.nudge, execution_id, owner))

    async def inbox(self, execution_id: str) -> list[Message]:
        rows = await asyncio.to_thread(self._store.pending, execution_id)
        return [message_from_json(row.message, inbox_id=row.id, inbox_sender=row.sender) for row in rows]

    def answer_gone(self, message: Message) -> None:
        assert message.inbox_id is not None
        self._spawn(asyncio.to_thread(self._store.answer_gone, [message.inbox_id], {"result": None}))

    async def _forward(self, execution_id: str, owner: str, message: Message) -> None:
        try:
            # One run's messages are written in the order they were sent.
            lock = self._send_order.setdefault(execution_id, asyncio.Lock())
            async with lock:
                inbox_id = await asyncio.to_thread(
                    self._store.send, execution_id, owner, message_to_json(message)
                )
            if not lock.locked():
                self._send_order.pop(execution_id, None)
            if message.reply is not None:
                await self._await_reply(execution_id, inbox_id, message.reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("could not hand a message to run %s", execution_id)
            if message.reply is not None and not message.reply.done():
                message.reply.set_exception(
                    Unavailable(
                        f"could not reach the replica driving run {execution_id}: {exc}",
                        reason="REPLICA_UNREACHABLE",
                    )
                )

    async def _await_reply(self, execution_id: str, inbox_id: int, reply: asyncio.Future[Any]) -> None:
        notified = self._waiting.setdefault(inbox_id, asyncio.Event())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLY_DEADLINE_SECONDS
        try:
            while not reply.done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REPLY_POLL_SECONDS):
                        await notified.wait()
                notified.clear()
                answered, answer = await asyncio.to_thread(self._store.reply_of, inbox_id)
                if answered:
                    if reply.done():
                        return
                    if isinstance(answer, dict) and "error" in answer:
                        reply.set_exception(error_from_json(answer["error"]))
                    else:
                        reply.set_result(answer.get("result") if isinstance(answer, dict) else None)
                    return
                if loop.time() > deadline:
                    reply.set_exception(
                        Unavailable(
                            f"the replica driving run {execution_id} did not answer in "
                            f"{REPLY_DEADLINE_SECONDS:g}s",
                            reason="REPLICA_UNREACHABLE",
                        )
                    )
                    return
                await self._chase(execution_id, inbox_id)
        finally:
            self._waiting.pop(inbox_id, None)

    async def _chase(self, execution_id: str, inbox_id: int) -> None:
        """No answer yet: take the run if its owner died or let it go, answer for a run that ended,
        or wake its owner again (a notification can be lost when a connection drops)."""
        if self._scheduler.is_loaded(execution_id):
            self._scheduler.deliver_inbox(execution_id, await self.inbox(execution_id))
            return
        claim = await self.claim(execution_id)
        if claim.epoch is not None:
            if not await self._scheduler.take(execution_id, claim.epoch):
                self._scheduler.deliver_inbox(execution_id, await self.inbox(execution_id))
        elif not claim.active:
            await asyncio.to_thread(self._store.answer_gone, [inbox_id], {"result": None})
        elif claim.owner:
            await asyncio.to_thread(self._store.nudge, execution_id, claim.owner)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- notifications ----------------------------------------------------------------------------------

    async def _on_connect(self) -> None:
        last = await event_log.last_sequence(self._reader)
        if last is not None:
            self._relay.committed_through(last)
        await self._on_state("reconnected")
        for event in self._waiting.values():
            event.set()
        self._takeover_now.set()

    async def _on_events(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._relay.committed_through(int(payload))

    async def _on_inbox(self, payload: str) -> None:
        owner, _, execution_id = payload.partition(" ")
        if owner != self.replica_id or not execution_id:
            return
        self._spawn(self._read_inbox(execution_id))

    async def _read_inbox(self, execution_id: str) -> None:
        if not self._scheduler.deliver_inbox(execution_id, await self.inbox(execution_id)):
            # Not driven here (any more): load it, which reads its inbox, or send it on to its owner.
            self._scheduler.deliver(execution_id, Wake())

    async def _on_reply(self, payload: str) -> None:
        sender, _, inbox_id = payload.partition(" ")
        if sender != self.replica_id:
            return
        with contextlib.suppress(ValueError):
            event = self._waiting.get(int(inbox_id))
            if event is not None:
                event.set()

    async def _on_state_changed(self, payload: str) -> None:
        await self._on_state(payload)

    async def _on_task_created(self, payload: str) -> None:
        workspace_id, _, queue = payload.partition("\t")
        self._on_task(workspace_id, queue)

    async def _on_orphans(self, payload: str) -> None:
        if payload != self.replica_id:
            self._takeover_now.set()
            self._scheduler.timers.refresh_soon()

    @property
    def stats(self) -> dict[str, int]:
        return {
            "claims": self._scheduler.claims,
            "forwarded": self._scheduler.forwarded,
            "leases_lost": self._scheduler.leases_lost,
            "taken_over": self.taken_over,
            "rejoined": self.rejoined,
        }
