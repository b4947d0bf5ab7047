"""Resuming pause points: ResumePausePoint (form values) and ResumeNode (webhook secret, for-each stack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runctl_server.engine.engine import Engine


class Resumes:
    """Answers resume calls; exactly one of many concurrent resumes of one pause point wins."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
