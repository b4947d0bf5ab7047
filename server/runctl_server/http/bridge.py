"""HTTP routes call the very servicer methods gRPC calls: one source of truth for behaviour.

A route builds the request message, calls the servicer method in-process (typed: the route names the
method itself, `services.servicers.executions.GetExecution`) with a LocalContext (which carries the HTTP
caller's credentials as gRPC metadata would), and shapes the response message as its compatibility
document wants. Domain errors come back as RunctlError and are mapped to HTTP in errors.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from runctl_server.api.auth import Authenticator
from runctl_server.api.servicers import Servicers
from runctl_server.engine.engine import Engine

RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT")
# A servicer method as the shim calls it: the context is a LocalContext, not grpc's.
Unary = Callable[[RequestT, Any], Awaitable[ResponseT]]
Streaming = Callable[[RequestT, Any], AsyncIterator[ResponseT]]


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
    """The servicer objects the gRPC server registered."""

    servicers: Servicers
    # With it, a stream ends when the caller's key is revoked while it runs (api/auth.py).
    authenticator: Authenticator | None = None
    # For the few documented behaviours that no gRPC method has (the runner's "most recent" run, offset
    # paging of the batch history): routes call the engine's public functions, never SQL.
    engine: Engine | None = None

    async def unary(
        self,
        method: Unary[RequestT, ResponseT],
        request: RequestT,
        metadata: Mapping[str, str] | None = None,
    ) -> ResponseT:
        return await method(request, LocalContext(metadata or {}))

    def streaming(
        self,
        method: Streaming[RequestT, ResponseT],
        request: RequestT,
        metadata: Mapping[str, str] | None = None,
        *,
        loopback: bool = False,
    ) -> AsyncIterator[ResponseT]:
        messages = method(request, LocalContext(metadata or {}))
        if self.authenticator is None:
            return messages
        return self.authenticator.guarded(messages, (metadata or {}).items(), loopback=loopback)


def to_dict(message: Message, *, snake_case: bool = False) -> dict[str, Any]:
    """Protobuf's JSON mapping: camelCase names (or the proto's snake_case), unset fields left out."""
    return json_format.MessageToDict(message, preserving_proto_field_name=snake_case)
