"""Cross-cutting gRPC behaviour: callers are authenticated, domain errors become statuses, crashes
become INTERNAL (reason INTERNAL, no details of the crash)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from runctl_server import errors
from runctl_server.api.auth import Authenticator, grpc_peer_is_loopback
from runctl_server.api.context import acting_in, bind_workspace
from runctl_server.api.status import to_grpc_status

log = logging.getLogger(__name__)


async def _abort_for(exc: BaseException, context: aio.ServicerContext[Any, Any], method: str) -> None:
    if isinstance(exc, errors.RunctlError):
        await context.abort_with_status(to_grpc_status(exc))
    log.exception("unhandled error in %s", method, exc_info=exc)
    # Never leak internals (SQL, paths) to the caller; the log has the traceback.
    crash = errors.RunctlError(f"internal error in {method}; see the server log", reason="INTERNAL")
    await context.abort_with_status(to_grpc_status(crash))


class Undecodable:
    """A request whose bytes are not a valid message (bad UTF-8 in a string, nesting deeper than the
    protobuf runtime allows, a truncated field): answered INVALID_ARGUMENT by the handler's wrapper,
    after authentication, instead of the runtime's bare UNKNOWN."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, RecursionError, ValueError) as exc:
            return Undecodable(str(exc) or type(exc).__name__)

    return decode


def _refuse_undecodable(request: Any) -> None:
    if isinstance(request, Undecodable):
        raise errors.InvalidArgument(
            f"the request message could not be decoded: {request.problem} (strings must be valid UTF-8, "
            "and messages and values nested at most 100 levels deep)",
            [
                errors.FieldViolation(
                    "request", "is not a valid encoded message of this method's request type"
                )
            ],
            reason="UNDECODABLE_REQUEST",
        )


def _wrap_unary(behaviour: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        try:
            _refuse_undecodable(request)
            return await behaviour(request, context)
        except (aio.AbortError, grpc.RpcError):
            raise
        except Exception as exc:
            await _abort_for(exc, context, method)

    return wrapper


def _wrap_stream(behaviour: Callable[..., Any], method: str) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            _refuse_undecodable(request)
            result = behaviour(request, context)
            if hasattr(result, "__aiter__"):
                async for message in result:
                    yield message
            else:
                await result
        except (aio.AbortError, grpc.RpcError):
            raise
        except Exception as exc:
            await _abort_for(exc, context, method)

    return wrapper


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """Maps RunctlError raised by any runctl handler to its status, in one place."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/runctl."):
            return handler
        # A namedtuple at run time; the stubs do not say so.
        patched: Any = handler
        if handler.request_deserializer is not None:
            patched = patched._replace(request_deserializer=_tolerant(handler.request_deserializer))
        if handler.unary_unary is not None:
            patched = patched._replace(unary_unary=_wrap_unary(handler.unary_unary, method))
        elif handler.unary_stream is not None:
            patched = patched._replace(unary_stream=_wrap_stream(handler.unary_stream, method))
        return cast("grpc.RpcMethodHandler[Any, Any]", patched)


class AuthInterceptor(aio.ServerInterceptor):
    """Every runctl call needs credentials that resolve to a workspace (api/auth.py); the handler then
    runs as that workspace. Refusals are UNAUTHENTICATED before the handler runs. Health and reflection
    stay open."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def _workspace(self, context: aio.ServicerContext[Any, Any]) -> str:
        try:
            return await self._authenticator.authenticate(
                context.invocation_metadata() or (), loopback=grpc_peer_is_loopback(context.peer())
            )
        except errors.Unauthenticated as exc:
            await context.abort_with_status(to_grpc_status(exc))
            raise  # abort_with_status raises; this only tells the type checker so

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith("/runctl."):
            return handler
        if handler.unary_unary is not None:
            unary: Callable[..., Awaitable[Any]] = handler.unary_unary

            async def checked_unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                with acting_in(await self._workspace(context)):
                    return await unary(request, context)

            return handler._replace(unary_unary=checked_unary)  # type: ignore[attr-defined, no-any-return]
        if handler.unary_stream is not None:
            stream: Callable[..., AsyncIterator[Any]] = handler.unary_stream  # type: ignore[assignment]

            async def checked_stream(
                request: Any, context: aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                # Each RPC runs in its own task: the workspace stays set for the life of the stream.
                bind_workspace(await self._workspace(context))
                messages = self._authenticator.guarded(
                    stream(request, context),
                    context.invocation_metadata() or (),
                    loopback=grpc_peer_is_loopback(context.peer()),
                )
                try:
                    async for message in messages:
                        yield message
                except errors.Unauthenticated as exc:  # its key was revoked while it streamed
                    await context.abort_with_status(to_grpc_status(exc))

            return handler._replace(unary_stream=checked_stream)  # type: ignore[attr-defined, no-any-return]
        return handler


class PerMethod(aio.ServerInterceptor):
    """Runs `interceptors` (outermost first) once per method and keeps the handler they make.

    Every interceptor here only wraps a method's handler, the same way for every call, so building the
    wrapped handler on each call would be wasted work on the hot path: gRPC awaits each interceptor in
    turn before the handler runs. Per-call work belongs inside the wrappers."""

    def __init__(self, interceptors: list[aio.ServerInterceptor]) -> None:
        self._interceptors = interceptors
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any] | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        if method in self._handlers:
            return self._handlers[method]
        chained = continuation
        for interceptor in reversed(self._interceptors):
            chained = _bound(interceptor, chained)
        handler = await chained(handler_call_details)
        if handler is not None:  # unknown methods are not kept: any caller could fill the table
            self._handlers[method] = handler
        return handler


def _bound(
    interceptor: aio.ServerInterceptor,
    continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
) -> Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]]:
    async def call(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        return await interceptor.intercept_service(continuation, details)

    return call
