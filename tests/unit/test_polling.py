"""The deadline polls of tests/support.py: they return as soon as the thing holds, and fail with
what did not hold."""

from __future__ import annotations

import itertools

import pytest

from tests.support import eventually, wait_for


def test_wait_for_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_for(lambda: next(answers), interval=0) == "ready"


def test_wait_for_fails_at_the_deadline_with_the_last_answer() -> None:
    with pytest.raises(AssertionError, match=r"the queue drained \(last answer \[\]\)"):
        wait_for(lambda: [], timeout=0, what="the queue drained")
    with pytest.raises(AssertionError, match="last answer 0"):
        wait_for(lambda: 0, timeout=0.05, interval=0.01)


def test_eventually_retries_an_assertion_until_it_passes() -> None:
    calls = itertools.count(1)

    def check() -> int:
        n = next(calls)
        assert n >= 3, f"only {n}"
        return n

    assert eventually(check, interval=0) == 3


def test_eventually_raises_the_last_assertion_error_at_the_deadline() -> None:
    def check() -> None:
        raise AssertionError("still RUNNING")

    with pytest.raises(AssertionError, match="still RUNNING"):
        eventually(check, timeout=0.05, interval=0.01)


def test_other_errors_are_not_retried() -> None:
    calls = itertools.count(1)

    def check() -> None:
        next(calls)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        eventually(check, interval=0)
    assert next(calls) == 2
