"""Per-call facts every servicer needs (for now: the caller's workspace)."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl_server.store.tables import DEFAULT_WORKSPACE_ID


def workspace_of(_context: aio.ServicerContext[Any, Any]) -> str:
    """The workspace the caller acts in; every call uses the default workspace until API keys exist."""
    return DEFAULT_WORKSPACE_ID
