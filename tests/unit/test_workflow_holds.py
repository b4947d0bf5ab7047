"""WorkflowHolds: which workflows' runs may start no node, as the workflow pause API changes it."""

from __future__ import annotations

import pytest

from runctl_server.engine.workflow_holds import WorkflowHolds


def test_a_pause_holds_its_runs_before_it_commits_and_shows_pending_only_until_then() -> None:
    holds = WorkflowHolds()
    with holds.pausing("wf"):
        assert holds.is_paused("wf") and holds.is_pending("wf")
    assert holds.is_paused("wf") and not holds.is_pending("wf")
    holds.lift("wf")
    assert not holds.is_paused("wf")


def test_a_pause_that_fails_to_commit_lets_the_runs_go_unless_they_were_held_already() -> None:
    holds = WorkflowHolds()
    with pytest.raises(RuntimeError), holds.pausing("wf"):
        raise RuntimeError("commit failed")
    assert not holds.is_paused("wf") and not holds.is_pending("wf")
    holds.replace(["wf"])
    with pytest.raises(RuntimeError), holds.pausing("wf"):
        raise RuntimeError("commit failed")
    assert holds.is_paused("wf")


def test_reloading_answers_the_workflows_resumed_elsewhere() -> None:
    holds = WorkflowHolds()
    holds.replace(["a", "b"])
    assert holds.replace(["b", "c"]) == {"a"}
    assert [holds.is_paused(w) for w in ("a", "b", "c", None)] == [False, True, True, False]
