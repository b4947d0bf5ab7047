"""HTTP routes call the very servicer methods gRPC calls: one source of truth for behaviour.

A route builds the request message, calls the servicer in-process with a LocalContext (which carries
the HTTP caller's credentials as gRPC metadata would), and shapes the response message as its compatibility
document wants. Domain errors come back as RunctlError and are mapped to HTTP in errors.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from runctl_server.api.auth import Authenticator
from runctl_server.engine.engine import Engine

Response = TypeVar("Response", bound=Message)


class LocalContext:
    """What a servicer may ask of its gRPC context, answered for an in-process HTTP call."""

    def __init__(self, metadata: Mapping[str, str]) -> None:
        self._metadata = tuple((key.lower(), value) for key, value in metadata.items())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "http"


@dataclass(frozen=True)
class Services:
    """The servicer objects the gRPC server registered, by service name (e.g. "ExecutionService")."""

    servicers: Mapping[str, Any]
    # With it, a stream ends when the caller's key is revoked while it runs (api/auth.py).
    authenticator: Authenticator | None = None
    # For the few documented behaviours that no gRPC method has (the runner's "most recent" run, offset
    # paging of the batch history): routes call the engine's public functions, never SQL.
    engine: Engine | None = None

    async def call(
        self, service: str, method: str, request: Message, metadata: Mapping[str, str] | None = None
    ) -> Any:
        handler: Callable[[Message, LocalContext], Awaitable[Any]] = getattr(self.servicers[service], method)
        return await handler(request, LocalContext(metadata or {}))

    def stream(
        self,
        service: str,
        method: str,
        request: Message,
        metadata: Mapping[str, str] | None = None,
        *,
        loopback: bool = False,
    ) -> AsyncIterator[Any]:
        handler: Callable[[Message, LocalContext], AsyncIterator[Any]] = getattr(
            self.servicers[service], method
        )
        messages = handler(request, LocalContext(metadata or {}))
        if self.authenticator is None:
            return messages
        return self.authenticator.guarded(messages, (metadata or {}).items(), loopback=loopback)


def to_dict(message: Message, *, snake_case: bool = False) -> dict[str, Any]:
    """Protobuf's JSON mapping: camelCase names (or the proto's snake_case), unset fields left out."""
    return json_format.MessageToDict(message, preserving_proto_field_name=snake_case)
