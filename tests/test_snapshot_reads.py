"""A snapshot read sees one moment of the database: a commit that lands between its statements is not
half seen. Watches rely on it: a run's or batch's status and the sequence of its last event come from
one snapshot, and a snapshot that paired an old status with the sequence of the event that ended it
left WatchBatch and WatchExecution waiting for an event they had already passed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, event, select

from runctl_server.store.database import create_db_engine
from runctl_server.store.reads import Reader

pair = Table("pair", MetaData(), Column("name", Text, primary_key=True), Column("value", Integer))
FIRST = select(pair.c.value).where(pair.c.name == "first")
SECOND = select(pair.c.value).where(pair.c.name == "second")


def test_a_commit_between_a_snapshots_reads_is_not_seen(tmp_path: Path) -> None:
    path = tmp_path / "runctl.db"
    engine = create_db_engine(f"sqlite:///{path}")  # WAL: a writer may commit while a read is open
    try:
        pair.create(engine)
        with engine.begin() as connection:
            connection.execute(pair.insert(), [{"name": "first", "value": 0}, {"name": "second", "value": 0}])
        committed: list[int] = []

        def commit_after_the_first_read(
            _conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any
        ) -> None:
            if statement.startswith("SELECT") and tuple(parameters) == ("first",) and not committed:
                other = sqlite3.connect(path)
                other.execute("UPDATE pair SET value = 1")
                other.commit()
                other.close()
                committed.append(1)

        event.listen(engine, "after_cursor_execute", commit_after_the_first_read)
        rows = asyncio.run(Reader(engine).snapshot({"first": FIRST, "second": SECOND}))
        assert committed, "the other connection's commit did not happen between the reads"
        assert (rows["first"][0]["value"], rows["second"][0]["value"]) == (0, 0)
        after = asyncio.run(Reader(engine).snapshot({"first": FIRST, "second": SECOND}))
        assert (after["first"][0]["value"], after["second"][0]["value"]) == (1, 1)
    finally:
        engine.dispose()
