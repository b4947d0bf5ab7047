"""Views of ended runs, kept in memory so that reading one costs no database round trip.

An ended run (completed, error, stopped) no longer changes; it can only go away (a batch clear, or
retention). So the view a read found is kept, bounded by count, oldest dropped first, and served until
an event says otherwise: any committed event of the run drops it, and a batch clear drops every kept
run of a batch in that workspace. Events of runs driven by other replicas reach this process through
the relay, so the rule holds across replicas, within the relay's delay. Retention removes old runs
without events: a pass of this process's own retention drops everything kept, and a view is never
served more than MAX_AGE_SECONDS after it was read, so a run that another process pruned (`runctl
prune`, another replica's retention) is answered from memory for at most that long.

A read that overlaps such an event must not keep what it read, which may predate the event: each read
notes its run's version when it starts, every event of the run bumps the version, and the view is kept
only if the version did not move. Everything here runs on the event loop, so no lock is needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from runctl_server.engine.model import FINISHED_EXECUTION
from runctl_server.store.records import LoggedEvent


class _Run(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def batch_id(self) -> str | None: ...


class _View(Protocol):
    @property
    def row(self) -> _Run: ...


View = TypeVar("View", bound=_View)

DEFAULT_CAPACITY = 1024
MAX_AGE_SECONDS = 60.0


@dataclass
class _Reading:
    readers: int = 0
    version: int = 0


class EndedRuns(Generic[View]):
    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_age: float = MAX_AGE_SECONDS) -> None:
        self._capacity = capacity
        self._max_age = max_age
        self._views: OrderedDict[tuple[str, bool], View] = OrderedDict()
        self._kept_at: dict[tuple[str, bool], float] = {}
        self._reading: dict[str, _Reading] = {}

    def __len__(self) -> int:
        return len(self._views)

    def holds_anything(self) -> bool:
        """Whether an event could change what this keeps or is reading."""
        return bool(self._views) or bool(self._reading)

    def get(self, workspace_id: str, execution_id: str, full: bool) -> View | None:
        key = (execution_id, full)
        view = self._views.get(key)
        if view is None or view.row.workspace_id != workspace_id:
            return None
        if time.monotonic() - self._kept_at[key] > self._max_age:
            self._forget(execution_id)
            return None
        self._views.move_to_end(key)
        return view

    def holds(self, view: View) -> bool:
        """Whether `view` is one this keeps (so it will be handed out again, unchanged)."""
        execution_id = str(view.row.id)
        return any(self._views.get((execution_id, full)) is view for full in (True, False))

    def reading(self, execution_id: str) -> int:
        """Note that a read of the run starts; the version to hand back to `keep`."""
        entry = self._reading.setdefault(execution_id, _Reading())
        entry.readers += 1
        return entry.version

    def done(self, execution_id: str, version: int, view: View | None, full: bool) -> None:
        """The read that started at `version` ended with `view` (None: it failed)."""
        entry = self._reading[execution_id]
        entry.readers -= 1
        fresh = entry.version == version
        if not entry.readers:
            del self._reading[execution_id]
        if not fresh or view is None or view.row.status not in FINISHED_EXECUTION or self._capacity <= 0:
            return
        self._views[(execution_id, full)] = view
        self._kept_at[(execution_id, full)] = time.monotonic()
        self._views.move_to_end((execution_id, full))
        while len(self._views) > self._capacity:
            oldest, _view = self._views.popitem(last=False)
            del self._kept_at[oldest]

    def observe(self, event: LoggedEvent) -> None:
        """A committed event, from this process or another replica."""
        if event.execution_id:
            self._forget(event.execution_id)
        if event.type == "BATCHES_CLEARED":
            self.batches_cleared(event.workspace_id)

    def batches_cleared(self, workspace_id: str) -> None:
        """Batch runs of the workspace went away. Called by the clear itself as well as by its event:
        the event may reach the hub after the clear has answered, and a read right after must not
        find a run the clear deleted."""
        cleared = [
            key
            for key, view in self._views.items()
            if view.row.batch_id and view.row.workspace_id == workspace_id
        ]
        for execution_id, _full in cleared:
            self._forget(execution_id)
        for entry in self._reading.values():
            entry.version += 1

    def pruned(self) -> None:
        """Retention removed old runs (which ones is not told): nothing kept may be one of them."""
        self._views.clear()
        self._kept_at.clear()
        for entry in self._reading.values():
            entry.version += 1

    def _forget(self, execution_id: str) -> None:
        for key in ((execution_id, True), (execution_id, False)):
            self._views.pop(key, None)
            self._kept_at.pop(key, None)
        entry = self._reading.get(execution_id)
        if entry is not None:
            entry.version += 1
