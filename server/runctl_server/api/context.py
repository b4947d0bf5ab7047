"""Per-call facts: the caller's workspace, and the resume link a call came through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from grpc import aio

from runctl_server.api.resume_links import LinkClaim
from runctl_server.errors import Unauthenticated

# Set by whoever authenticated the call (the gRPC AuthInterceptor, the HTTP middleware, the Socket.IO
# handshake) for the duration of the call; servicers read it through workspace_of.
_workspace: ContextVar[str | None] = ContextVar("runctl_workspace", default=None)


# Set when the call's credential is a resume link's token (http/auth.py): the call may answer that
# one pause point and do nothing else.
_link: ContextVar[LinkClaim | None] = ContextVar("runctl_resume_link", default=None)


@contextmanager
def through_link(claim: LinkClaim) -> Iterator[None]:
    token = _link.set(claim)
    try:
        yield
    finally:
        _link.reset(token)


def link_claim() -> LinkClaim | None:
    """The resume link the call came through, if any."""
    return _link.get()


@contextmanager
def acting_in(workspace_id: str) -> Iterator[None]:
    """Run the enclosed calls as the given (already authenticated) workspace."""
    token = _workspace.set(workspace_id)
    try:
        yield
    finally:
        _workspace.reset(token)


def bind_workspace(workspace_id: str) -> None:
    """Act as the workspace for the rest of the current task (a stream that lives as long as its task)."""
    _workspace.set(workspace_id)


def workspace_of(_context: aio.ServicerContext[Any, Any]) -> str:
    """The workspace the caller's credentials resolved to. A call that reached a servicer without
    passing authentication is refused rather than given some default workspace."""
    return current_workspace()


def current_workspace() -> str:
    """The authenticated workspace of the call in progress (gRPC, or an HTTP route that calls an
    engine function directly); Unauthenticated when none was set."""
    workspace_id = _workspace.get()
    if workspace_id is None:
        raise Unauthenticated("the call was not authenticated", reason="API_KEY_REQUIRED")
    return workspace_id
