"""Reads of the event log and its counters (appending is the writer's: store/writer.py)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, select

from runctl_server.store.reads import Reader
from runctl_server.store.records import LoggedEvent, logged_event
from runctl_server.store.tables import counters, events


async def _events(reader: Reader, statement: Select[tuple[object, ...]]) -> list[LoggedEvent]:
    return [logged_event(row) for row in await reader.all(statement)]


async def run_events(reader: Reader, execution_id: str, *, after: int, limit: int) -> list[LoggedEvent]:
    """A run's events with a sequence above `after`, oldest first."""
    return await _events(
        reader,
        select(events)
        .where(events.c.execution_id == execution_id, events.c.sequence > after)
        .order_by(events.c.sequence)
        .limit(limit),
    )


async def matching_events(
    reader: Reader,
    workspace_id: str,
    *,
    after: int,
    limit: int,
    workflow_id: str = "",
    execution_id: str = "",
    batch_id: str = "",
    types: Collection[str] = (),
    without_node_events: bool = False,
) -> list[LoggedEvent]:
    """A workspace's events above `after`, oldest first, narrowed by every filter given."""
    statement = select(events).where(events.c.workspace_id == workspace_id)
    for column, value in (
        (events.c.workflow_id, workflow_id),
        (events.c.execution_id, execution_id),
        (events.c.batch_id, batch_id),
    ):
        if value:
            statement = statement.where(column == value)
    if types:
        statement = statement.where(events.c.type.in_(sorted(types)))
    if without_node_events:
        statement = statement.where(events.c.type.not_like("NODE\\_%", escape="\\"))
    return await _events(
        reader, statement.where(events.c.sequence > after).order_by(events.c.sequence).limit(limit)
    )


async def events_between(reader: Reader, *, after: int, through: int, limit: int) -> list[LoggedEvent]:
    """Every event numbered in (after, through], oldest first."""
    return await _events(
        reader,
        select(events)
        .where(events.c.sequence > after, events.c.sequence <= through)
        .order_by(events.c.sequence)
        .limit(limit),
    )


async def counter(reader: Reader, name: str) -> int | None:
    """A named counter: `event_sequence` (the last number given) or `events_pruned_through`."""
    row = await reader.one(select(counters.c.value).where(counters.c.name == name))
    return None if row is None else int(row["value"])


async def last_sequence(reader: Reader) -> int | None:
    return await counter(reader, "event_sequence")


async def pruned_through(reader: Reader) -> int:
    """Events at or below this sequence may have been removed from the log (0: none ever were)."""
    return await counter(reader, "events_pruned_through") or 0
