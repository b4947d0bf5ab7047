"""Streams that may hand gRPC a message already in its wire form.

A live event goes to every watcher; serializing the same message once per watcher was most of what a
busy fan-out cost. A servicer of a method listed here may yield `bytes` (a serialized response, made
once and shared) as well as messages; this interceptor lets such bytes through the serializer as they
are. Nothing else changes for the method: clients receive the very same bytes either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

PRESERIALIZED = frozenset({"/runctl.v1.EventService/StreamEvents"})


def _passing_bytes(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def serializer(message: Any) -> bytes:
        return message if isinstance(message, bytes) else serialize(message)

    return serializer


class PreserializedInterceptor(aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method not in PRESERIALIZED:
            return handler
        serialize = handler.response_serializer
        if serialize is None:
            return handler
        return handler._replace(response_serializer=_passing_bytes(serialize))  # type: ignore[attr-defined, no-any-return]
