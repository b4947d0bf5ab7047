"""Fill every RPC a servicer does not implement with a clear UNIMPLEMENTED answer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from google.protobuf.descriptor import ServiceDescriptor
from grpc import aio

from runctl_server.api.status import unimplemented_status

T = TypeVar("T")


def _unimplemented(full_method: str) -> Callable[..., Coroutine[Any, Any, None]]:
    async def handler(_request: Any, context: aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(unimplemented_status(full_method))

    return handler


def complete_servicer(servicer: T, base: type, service: ServiceDescriptor) -> T:
    """Replace the generated base's sync placeholders, which are not fit for grpc.aio, on `servicer`."""
    for method in service.methods:
        if getattr(type(servicer), method.name) is getattr(base, method.name):
            setattr(servicer, method.name, _unimplemented(f"{service.full_name}/{method.name}"))
    return servicer
