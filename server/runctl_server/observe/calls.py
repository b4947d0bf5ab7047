"""Per-call and per-run facts for log lines: set by the layer that knows them, read by the log
formatter. A `CallInfo` is mutable on purpose: inner layers (authentication) fill in who called, and
the access log written by the outermost layer sees it."""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from dataclasses import dataclass

MAX_REQUEST_ID_CHARS = 128


@dataclass
class CallInfo:
    request_id: str
    workspace: str | None = None
    # The key's id (key_...), never the key.
    key_id: str | None = None
    # The run and workflow the call names, when it names one.
    execution_id: str | None = None
    workflow_id: str | None = None


@dataclass(frozen=True)
class RunInfo:
    execution_id: str
    workflow_id: str | None
    workspace: str


_call: ContextVar[CallInfo | None] = ContextVar("runctl_call", default=None)
_run: ContextVar[RunInfo | None] = ContextVar("runctl_run", default=None)


def request_id_from(given: str | None) -> str:
    """The caller's x-request-id when it sent a sensible one, else a new one."""
    if given:
        given = given.strip()
        if 0 < len(given) <= MAX_REQUEST_ID_CHARS and given.isprintable():
            return given
    return secrets.token_hex(8)


def begin_call(request_id: str) -> CallInfo:
    """Start a call's record for the rest of the current task."""
    info = CallInfo(request_id)
    _call.set(info)
    return info


def current_call() -> CallInfo | None:
    return _call.get()


def note_caller(workspace: str, key_id: str | None) -> None:
    """Authentication found who calls (the access log and every later log line of the call say it)."""
    info = _call.get()
    if info is not None:
        info.workspace = workspace
        info.key_id = key_id


def bind_run(execution_id: str, workflow_id: str | None, workspace: str) -> None:
    """Log lines of the current task (a run's driver) carry the run's ids."""
    _run.set(RunInfo(execution_id, workflow_id, workspace))


def current_run() -> RunInfo | None:
    return _run.get()
