"""Replica registration, run leases and the run inbox: the SQL that lets several processes share one
PostgreSQL database with each run driven by exactly one of them.

A run's lease is the pair (lease_owner, lease_epoch) on its executions row; its expiry is its owner's
`replicas.expires_at`, renewed by one heartbeat per replica (not per run), so a heartbeat costs one row
however many runs a replica drives. Every claim adds one to the epoch, the fencing token: the writer
commits a change to a run only while the epoch it loaded the run with is still the row's.

Every time here is the database's clock (`clock_timestamp()`), so replicas whose clocks disagree still
agree on who is alive.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from runctl_server.store.writer import Change

# Every time is the database's own clock: extract(epoch from clock_timestamp()).
# A run may be claimed when nobody holds it, this replica does, or its owner's row is missing or expired.
_CLAIM = text(
    "UPDATE executions SET lease_owner = :me, lease_epoch = lease_epoch + 1"
    " WHERE id = :id AND status IN ('queued', 'running', 'paused')"
    " AND (lease_owner IS NULL OR lease_owner = :me OR NOT EXISTS (SELECT 1 FROM replicas r"
    " WHERE r.id = executions.lease_owner AND r.expires_at > extract(epoch from clock_timestamp())))"
    " RETURNING lease_epoch"
)
_OWNER_OF = text(
    "SELECT e.status, e.lease_owner,"
    " coalesce(r.expires_at > extract(epoch from clock_timestamp()), false) AS owner_alive"
    " FROM executions e LEFT JOIN replicas r ON r.id = e.lease_owner WHERE e.id = :id"
)
# Runs nobody drives: released unparked by a replica that drained, or held by a dead replica.
_COUNT_ORPHANS = text(
    "SELECT count(*) FROM executions e WHERE e.status IN ('queued', 'running', 'paused') AND ("
    "(e.lease_owner IS NULL AND e.parked = false AND e.status <> 'queued')"
    " OR (e.lease_owner IS NOT NULL AND e.lease_owner <> :me AND NOT EXISTS (SELECT 1 FROM replicas r"
    " WHERE r.id = e.lease_owner AND r.expires_at > extract(epoch from clock_timestamp()))))"
)
_CLAIM_ORPHANS = text(
    "UPDATE executions SET lease_owner = :me, lease_epoch = lease_epoch + 1 WHERE id IN ("
    "SELECT e.id FROM executions e WHERE e.status IN ('queued', 'running', 'paused') AND ("
    "(e.lease_owner IS NULL AND e.parked = false AND e.status <> 'queued')"
    " OR (e.lease_owner IS NOT NULL AND e.lease_owner <> :me AND NOT EXISTS (SELECT 1 FROM replicas r"
    " WHERE r.id = e.lease_owner AND r.expires_at > extract(epoch from clock_timestamp()))))"
    " ORDER BY e.created_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
    " RETURNING id, lease_epoch"
)
_LIVE_REPLICAS = text(
    "SELECT count(*) FROM replicas WHERE expires_at > extract(epoch from clock_timestamp())"
)
_FORGET_DEAD = text(
    "DELETE FROM replicas r WHERE r.expires_at < extract(epoch from clock_timestamp()) - :grace"
    " AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.lease_owner = r.id"
    " AND e.status IN ('queued', 'running', 'paused')) RETURNING id"
)
_REGISTER = text(
    "INSERT INTO replicas (id, name, host, pid, started_at, heartbeat_at, expires_at)"
    " VALUES (:id, :name, :host, :pid, extract(epoch from clock_timestamp()),"
    " extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp()) + :ttl)"
)
_HEARTBEAT = text(
    "UPDATE replicas SET heartbeat_at = extract(epoch from clock_timestamp()),"
    " expires_at = extract(epoch from clock_timestamp()) + :ttl WHERE id = :id RETURNING id"
)
_RELEASE_ALL = text(
    "UPDATE executions SET lease_owner = NULL WHERE lease_owner = :me"
    " AND status IN ('queued', 'running', 'paused') RETURNING id"
)
_UNREGISTER = text("DELETE FROM replicas WHERE id = :id")

_SEND = text(
    "INSERT INTO run_inbox (execution_id, sender, message, created_at)"
    " VALUES (:execution_id, :sender, :message, extract(epoch from clock_timestamp())) RETURNING id"
)
_PENDING = text(
    "SELECT id, sender, message FROM run_inbox WHERE execution_id = :id AND handled_at IS NULL ORDER BY id"
)
_REPLY_OF = text("SELECT handled_at, reply FROM run_inbox WHERE id = :id")
# Answering a message whose run has ended: only if nobody answered it meanwhile.
_ANSWER_GONE = text(
    "UPDATE run_inbox SET handled_at = extract(epoch from clock_timestamp()), reply = :reply"
    " WHERE id = :id AND handled_at IS NULL"
)
_FORGET_HANDLED = text(
    "DELETE FROM run_inbox WHERE handled_at < extract(epoch from clock_timestamp()) - :age"
)

# Statements a driver adds to its run's (fenced) mutation: the answer commits with the change.
_MARK_HANDLED = "UPDATE run_inbox SET handled_at = :now, reply = :reply WHERE id = :id AND handled_at IS NULL"
NOTIFY = "SELECT pg_notify(:channel, :payload)"
_RELEASE_RUN = "UPDATE executions SET lease_owner = NULL WHERE id = :id"

# LISTEN/NOTIFY channels.
EVENTS_CHANNEL = "runctl_events"  # payload: the last sequence number a commit appended
INBOX_CHANNEL = "runctl_inbox"  # payload: "<owner replica id> <execution id>"
REPLIES_CHANNEL = "runctl_replies"  # payload: "<sender replica id> <inbox id>"
STATE_CHANNEL = "runctl_state"  # payload: what changed ("workflows")
ORPHANS_CHANNEL = "runctl_orphans"  # payload: the replica that released its runs
TASKS_CHANNEL = "runctl_tasks"  # payload: "<workspace id>\t<queue>" that has a new task


# -- changes for the writer: a driver's answers and releases commit with its run's (fenced) change.


def mark_handled(inbox_id: int, reply: str, now: float) -> Change:
    """Answer a message of the run inbox (`reply` is JSON text); an answered one keeps its answer."""
    return _MARK_HANDLED, {"id": inbox_id, "now": now, "reply": reply}


def release_run(execution_id: str) -> Change:
    """Give up the run's lease: whoever next has something for it takes it."""
    return _RELEASE_RUN, {"id": execution_id}


def notify_reply(sender: str, inbox_id: int) -> Change:
    """Wake the replica that sent an inbox message: its answer is committed."""
    return NOTIFY, {"channel": REPLIES_CHANNEL, "payload": f"{sender} {inbox_id}"}


def notify_new_task(workspace_id: str, queue: str) -> Change:
    """Wake the replicas whose workers poll the queue: it has a new task."""
    return NOTIFY, {"channel": TASKS_CHANNEL, "payload": f"{workspace_id}\t{queue}"}


def notify_state(what: str) -> Change:
    """Tell every replica to reread shared state (`what`: "workflows")."""
    return NOTIFY, {"channel": STATE_CHANNEL, "payload": what}


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to take a run: `epoch` when taken; else who holds it, or that it ended."""

    epoch: int | None
    owner: str | None = None
    active: bool = True


@dataclass(frozen=True)
class InboxRow:
    id: int
    sender: str
    message: dict[str, Any]


class LeaseStore:
    """The lease and inbox statements, each run in its own short transaction (call from a thread)."""

    def __init__(self, engine: Engine, replica_id: str, name: str, ttl: float) -> None:
        self._engine = engine
        self.replica_id = replica_id
        self.name = name
        self.ttl = ttl

    def register(self) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                _REGISTER,
                {
                    "id": self.replica_id,
                    "name": self.name,
                    "host": socket.gethostname()[:200],
                    "pid": os.getpid(),
                    "ttl": self.ttl,
                },
            )

    def forget_name(self, name: str) -> None:
        """A replica starting under a name declares its previous incarnation (same name) dead."""
        with self._engine.begin() as connection:
            connection.execute(text("DELETE FROM replicas WHERE name = :name"), {"name": name})

    def heartbeat(self) -> bool:
        """Renew this replica's lease; False when it was declared dead (its row is gone)."""
        with self._engine.begin() as connection:
            return (
                connection.execute(_HEARTBEAT, {"id": self.replica_id, "ttl": self.ttl}).first() is not None
            )

    def claim(self, execution_id: str) -> Claim:
        with self._engine.begin() as connection:
            epoch = connection.execute(_CLAIM, {"id": execution_id, "me": self.replica_id}).scalar()
            if epoch is not None:
                return Claim(int(epoch))
            row = connection.execute(_OWNER_OF, {"id": execution_id}).mappings().first()
        if row is None or row["status"] not in ("queued", "running", "paused"):
            return Claim(None, active=False)
        # Lost a race with a claim that is not committed yet, or held by a live replica.
        return Claim(None, owner=row["lease_owner"] if row["owner_alive"] else None)

    def claim_orphans(self, limit: int) -> list[tuple[str, int]]:
        with self._engine.begin() as connection:
            rows = connection.execute(_CLAIM_ORPHANS, {"me": self.replica_id, "limit": limit}).all()
        return [(str(row[0]), int(row[1])) for row in rows]

    def orphan_count(self) -> tuple[int, int]:
        """(runs nobody drives, live replicas) in one go, to take a fair share."""
        with self._engine.connect() as connection:
            orphans = int(connection.execute(_COUNT_ORPHANS, {"me": self.replica_id}).scalar() or 0)
            live = int(connection.execute(_LIVE_REPLICAS).scalar() or 0)
        return orphans, live

    def forget_dead(self) -> list[str]:
        with self._engine.begin() as connection:
            return [str(row[0]) for row in connection.execute(_FORGET_DEAD, {"grace": self.ttl}).all()]

    def release_all(self) -> int:
        """On a drain: every run this replica holds is left for the others (who are told)."""
        with self._engine.begin() as connection:
            released = len(connection.execute(_RELEASE_ALL, {"me": self.replica_id}).all())
            connection.execute(_UNREGISTER, {"id": self.replica_id})
            connection.execute(text(NOTIFY), {"channel": ORPHANS_CHANNEL, "payload": self.replica_id})
        return released

    # -- the inbox ------------------------------------------------------------------------------------

    def send(self, execution_id: str, owner: str, message: dict[str, Any]) -> int:
        """Commit a message for the run's driver and wake its owner; answers the message's id."""
        with self._engine.begin() as connection:
            inbox_id = int(
                connection.execute(
                    _SEND,
                    {"execution_id": execution_id, "sender": self.replica_id, "message": json.dumps(message)},
                ).scalar_one()
            )
            connection.execute(text(NOTIFY), {"channel": INBOX_CHANNEL, "payload": f"{owner} {execution_id}"})
        return inbox_id

    def nudge(self, execution_id: str, owner: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(text(NOTIFY), {"channel": INBOX_CHANNEL, "payload": f"{owner} {execution_id}"})

    def pending(self, execution_id: str) -> list[InboxRow]:
        with self._engine.connect() as connection:
            rows = connection.execute(_PENDING, {"id": execution_id}).all()
        return [InboxRow(int(row[0]), str(row[1]), json.loads(row[2])) for row in rows]

    def reply_of(self, inbox_id: int) -> tuple[bool, Any]:
        """(answered, the answer as JSON)."""
        with self._engine.connect() as connection:
            row = connection.execute(_REPLY_OF, {"id": inbox_id}).first()
        if row is None or row[0] is None:
            return False, None
        return True, json.loads(row[1]) if row[1] is not None else None

    def answer_gone(self, inbox_ids: Sequence[int], reply: Any) -> None:
        with self._engine.begin() as connection:
            for inbox_id in inbox_ids:
                connection.execute(_ANSWER_GONE, {"id": inbox_id, "reply": json.dumps(reply)})

    def forget_handled(self, age: float) -> None:
        with self._engine.begin() as connection:
            connection.execute(_FORGET_HANDLED, {"age": age})
