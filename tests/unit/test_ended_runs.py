"""The keep-or-not rules of the ended-runs cache (engine/ended_runs.py), without a server."""

from __future__ import annotations

from dataclasses import dataclass

from runctl_server.engine.ended_runs import EndedRuns
from runctl_server.store.writer import EventRecord


@dataclass(frozen=True)
class Run:
    id: str
    workspace_id: str
    batch_id: str | None
    status: str


@dataclass
class View:
    row: Run


def ended(run: str, *, workspace: str = "ws", batch: str | None = None, status: str = "completed") -> View:
    return View(Run(run, workspace, batch, status))


def read(kept: EndedRuns[View], view: View, full: bool = True) -> None:
    kept.done(view.row.id, kept.reading(view.row.id), view, full)


def test_an_ended_run_is_kept_per_view_and_per_workspace() -> None:
    kept: EndedRuns[View] = EndedRuns(10)
    view = ended("r1")
    read(kept, view)
    assert kept.get("ws", "r1", True) is view
    assert kept.get("ws", "r1", False) is None  # the basic view was never read
    assert kept.get("other", "r1", True) is None  # another workspace never sees it
    assert kept.holds(view)


def test_a_run_still_going_is_never_kept() -> None:
    kept: EndedRuns[View] = EndedRuns(10)
    read(kept, ended("r1", status="running"))
    read(kept, ended("r2", status="paused"))
    assert len(kept) == 0


def test_an_event_during_the_read_keeps_the_read_out() -> None:
    kept: EndedRuns[View] = EndedRuns(10)
    version = kept.reading("r1")
    kept.observe(EventRecord(type="NODE_LOG", workspace_id="ws", execution_id="r1"))
    kept.done("r1", version, ended("r1"), True)
    assert kept.get("ws", "r1", True) is None
    read(kept, ended("r1"))  # a read that starts afterwards is kept
    assert kept.get("ws", "r1", True) is not None


def test_events_and_batch_clears_drop_what_was_kept() -> None:
    kept: EndedRuns[View] = EndedRuns(10)
    for run, batch in (("r1", None), ("r2", "b1"), ("r3", "b2")):
        read(kept, ended(run, batch=batch))
    read(kept, ended("r4", workspace="other", batch="b9"))
    kept.observe(EventRecord(type="EXECUTION_STOPPED", workspace_id="ws", execution_id="r1"))
    assert kept.get("ws", "r1", True) is None
    kept.observe(EventRecord(type="BATCHES_CLEARED", workspace_id="ws"))
    assert kept.get("ws", "r2", True) is None and kept.get("ws", "r3", True) is None
    assert kept.get("other", "r4", True) is not None  # another workspace's batches stay


def test_a_clear_during_a_read_keeps_the_read_out() -> None:
    kept: EndedRuns[View] = EndedRuns(10)
    version = kept.reading("r1")
    kept.batches_cleared("ws")
    kept.done("r1", version, ended("r1", batch="b1"), True)
    assert kept.get("ws", "r1", True) is None


def test_the_oldest_read_goes_first_beyond_the_capacity() -> None:
    kept: EndedRuns[View] = EndedRuns(2)
    for run in ("r1", "r2"):
        read(kept, ended(run))
    assert kept.get("ws", "r1", True) is not None  # r1 is now the most recently used
    read(kept, ended("r3"))
    assert kept.get("ws", "r2", True) is None
    assert kept.get("ws", "r1", True) is not None and kept.get("ws", "r3", True) is not None
    none: EndedRuns[View] = EndedRuns(0)
    read(none, ended("r1"))
    assert len(none) == 0


def test_a_kept_view_ages_out_and_a_prune_drops_everything() -> None:
    kept: EndedRuns[View] = EndedRuns(10, max_age=-1.0)
    read(kept, ended("r1"))
    assert kept.get("ws", "r1", True) is None  # older than the age limit: read again
    kept = EndedRuns(10)
    read(kept, ended("r1"))
    version = kept.reading("r2")
    kept.pruned()
    kept.done("r2", version, ended("r2"), True)
    assert len(kept) == 0
