"""Retention: remove ended runs older than a cut-off with everything that belongs to them (node
states, pause points, worker tasks, inbox rows, events), in bounded batches so no transaction holds
the database for long. The highest event sequence removed is remembered (`events_pruned_through`),
so a watcher resuming from a cursor inside the removed history is told it is truncated."""

from __future__ import annotations

from dataclasses import dataclass, fields

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

DEFAULT_BATCH = 500

executions = sa.table(
    "executions",
    sa.column("id"),
    sa.column("status"),
    sa.column("ended_at"),
    sa.column("batch_id"),
)
batches = sa.table("batches", sa.column("id"), sa.column("status"))
counters = sa.table("counters", sa.column("name"), sa.column("value"))
events = sa.table("events", sa.column("execution_id"), sa.column("sequence"))

# What belongs to a run, by the name its count goes under.
_OWNED = {
    "nodes": sa.table("node_states", sa.column("execution_id")),
    "pause_points": sa.table("pause_points", sa.column("execution_id")),
    "tasks": sa.table("tasks", sa.column("execution_id")),
    "inbox_messages": sa.table("run_inbox", sa.column("execution_id")),
    "events": events,
}


def _ended_before(cutoff: float) -> sa.ColumnElement[bool]:
    """Ended runs that ended before `cutoff`; runs of a batch still running stay until it ends."""
    running_batch = sa.exists().where(batches.c.id == executions.c.batch_id, batches.c.status == "running")
    return sa.and_(
        executions.c.ended_at.is_not(None),
        executions.c.ended_at < cutoff,
        executions.c.status.in_(("completed", "error", "stopped")),
        sa.not_(running_batch),
    )


@dataclass
class PruneCounts:
    """What was removed (or, for a dry run, would be)."""

    runs: int = 0
    nodes: int = 0
    pause_points: int = 0
    tasks: int = 0
    inbox_messages: int = 0
    events: int = 0

    def add(self, other: PruneCounts) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


def count_prunable(database: Engine, cutoff: float) -> PruneCounts:
    """What `prune` would remove now (a dry run)."""
    chosen = sa.select(executions.c.id).where(_ended_before(cutoff))
    with database.connect() as connection:
        runs = connection.execute(sa.select(sa.func.count()).select_from(chosen.subquery())).scalar()
        counts = PruneCounts(runs=int(runs or 0))
        for name, table in _OWNED.items():
            query = sa.select(sa.func.count()).select_from(table).where(table.c.execution_id.in_(chosen))
            setattr(counts, name, int(connection.execute(query).scalar() or 0))
    return counts


def prune_batch(database: Engine, cutoff: float, limit: int = DEFAULT_BATCH) -> PruneCounts:
    """Remove up to `limit` ended runs that ended before `cutoff` (epoch seconds), in one transaction."""
    with database.begin() as connection:
        pick = (
            sa.select(executions.c.id)
            .where(_ended_before(cutoff))
            .order_by(executions.c.ended_at)
            .limit(limit)
        )
        ids = [str(row[0]) for row in connection.execute(pick)]
        if not ids:
            return PruneCounts()
        return _remove(connection, ids)


def _remove(connection: Connection, ids: list[str]) -> PruneCounts:
    counts = PruneCounts(runs=len(ids))
    last = connection.execute(
        sa.select(sa.func.max(events.c.sequence)).where(events.c.execution_id.in_(ids))
    ).scalar()
    if last is not None:
        connection.execute(
            sa.update(counters)
            .where(counters.c.name == "events_pruned_through", counters.c.value < last)
            .values(value=last)
        )
    for name, table in _OWNED.items():
        result = connection.execute(sa.delete(table).where(table.c.execution_id.in_(ids)))
        setattr(counts, name, max(result.rowcount, 0))
    connection.execute(sa.delete(executions).where(executions.c.id.in_(ids)))
    return counts


def prune(database: Engine, cutoff: float, limit: int = DEFAULT_BATCH) -> PruneCounts:
    """Remove every ended run that ended before `cutoff`, batch after batch."""
    total = PruneCounts()
    while True:
        counts = prune_batch(database, cutoff, limit)
        total.add(counts)
        if counts.runs < limit:
            return total
