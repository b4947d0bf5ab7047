"""The outermost gRPC interceptors: every call is counted (the go-grpc-prometheus metrics), traced,
and written to the access log; while the database is unreachable runctl calls answer UNAVAILABLE."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from grpc import aio

from runctl_server.api.status import to_grpc_status
from runctl_server.errors import Unavailable
from runctl_server.observe import logs, tracing
from runctl_server.observe.calls import begin_call, request_id_from
from runctl_server.observe.metrics import Metrics

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return service or "unknown", name or "unknown"


def _text_metadata(context: aio.ServicerContext[Any, Any]) -> dict[str, str]:
    return {
        key: value
        for key, value in (context.invocation_metadata() or ())
        if isinstance(value, str) and not key.endswith("-bin")
    }


def _code_name(context: aio.ServicerContext[Any, Any], failure: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if failure is None:
        return "OK"
    if isinstance(failure, aio.AbortError):
        return "UNKNOWN"
    return (
        "CANCELLED"
        if isinstance(failure, BaseException) and not isinstance(failure, Exception)
        else "UNKNOWN"
    )


class _Call:
    """One call's observation: started before the handler, finished after it."""

    def __init__(self, metrics: Metrics | None, method: str, kind: str, context: Any) -> None:
        self.metrics = metrics
        self.method = method
        self.kind = kind
        self.context = context
        self.service, self.name = _split(method)
        self.metadata = _text_metadata(context)
        self.info = begin_call(request_id_from(self.metadata.get("x-request-id")))
        self.started = time.perf_counter()
        # Read now: once a cancelled stream's call is gone, asking for its peer crashes the process.
        self.peer = context.peer()
        if metrics is not None:
            metrics.grpc_started.labels(kind, self.service, self.name).inc()

    def names(self, request: Any) -> None:
        """The run and workflow a request names (its `execution_id` and `workflow_id` fields), for the
        log lines of the call."""
        for field in ("execution_id", "workflow_id"):
            value = getattr(request, field, None)
            if isinstance(value, str) and value:
                setattr(self.info, field, value)

    def finish(self, failure: BaseException | None, span: Any) -> None:
        code = _code_name(self.context, failure)
        seconds = time.perf_counter() - self.started
        if self.metrics is not None:
            self.metrics.grpc_handled.labels(self.kind, self.service, self.name, code).inc()
            self.metrics.grpc_seconds.labels(self.kind, self.service, self.name).observe(seconds)
        if code != "OK":
            tracing.failed(span, code)
        tracing.set_attribute(span, "rpc.grpc.status_code", code)
        logs.access(
            {
                "grpc_method": self.method,
                "status": code,
                "duration_ms": round(seconds * 1000, 2),
                "peer": self.peer,
            },
            f"{self.method} {code} {seconds * 1000:.1f}ms",
        )

    def span(self) -> Any:
        return tracing.server_span(
            self.method.lstrip("/"),
            self.metadata,
            {"rpc.system": "grpc", "rpc.service": self.service, "rpc.method": self.name},
        )


class ObservingInterceptor(aio.ServerInterceptor):
    """Metrics, a server span and an access log line for every call (health and reflection included)."""

    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        metrics = self._metrics
        patched: Any = handler
        if handler.unary_unary is not None or handler.stream_unary is not None:
            single = handler.unary_unary is not None
            behaviour: Callable[..., Awaitable[Any]] = handler.unary_unary or handler.stream_unary  # type: ignore[assignment]
            kind = "unary" if single else "client_stream"

            async def respond(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                call = _Call(metrics, method, kind, context)
                call.names(request)
                failure: BaseException | None = None
                with call.span() as span:
                    try:
                        return await behaviour(request, context)
                    except BaseException as exc:
                        failure = exc
                        raise
                    finally:
                        call.finish(failure, span)

            patched = patched._replace(**{"unary_unary" if single else "stream_unary": respond})
        else:
            single = handler.unary_stream is not None
            streaming: Callable[..., Any] = handler.unary_stream or handler.stream_stream  # type: ignore[assignment]
            kind = "server_stream" if single else "bidi_stream"

            async def stream(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                call = _Call(metrics, method, kind, context)
                if single:
                    call.names(request)
                failure: BaseException | None = None
                with call.span() as span:
                    try:
                        result = streaming(request, context)
                        if hasattr(result, "__aiter__"):
                            async for message in result:
                                yield message
                        else:  # a handler that writes with context.write() (grpcio's health Watch)
                            await result
                    except BaseException as exc:
                        failure = exc
                        raise
                    finally:
                        call.finish(failure, span)

            patched = patched._replace(**{"unary_stream" if single else "stream_stream": stream})
        return cast("grpc.RpcMethodHandler[Any, Any]", patched)


DATABASE_DOWN_MESSAGE = (
    "the server cannot reach its database at the moment; nothing was done: retry once health says SERVING"
)


class DatabaseGate(aio.ServerInterceptor):
    """While the database is unreachable runctl calls are refused at once with UNAVAILABLE (reason
    DATABASE_UNAVAILABLE) instead of failing half-way; health and reflection go on answering."""

    def __init__(self, database_up: Callable[[], bool]) -> None:
        self._database_up = database_up

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith("/runctl."):
            return handler
        database_up = self._database_up
        refusal = to_grpc_status(Unavailable(DATABASE_DOWN_MESSAGE, reason="DATABASE_UNAVAILABLE"))
        patched: Any = handler
        if handler.unary_unary is not None:
            unary: Callable[..., Awaitable[Any]] = handler.unary_unary

            async def gated_unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                if not database_up():
                    await context.abort_with_status(refusal)
                return await unary(request, context)

            patched = patched._replace(unary_unary=gated_unary)
        elif handler.unary_stream is not None:
            stream: Callable[..., AsyncIterator[Any]] = handler.unary_stream  # type: ignore[assignment]

            async def gated_stream(
                request: Any, context: aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                if not database_up():
                    await context.abort_with_status(refusal)
                async for message in stream(request, context):
                    yield message

            patched = patched._replace(unary_stream=gated_stream)
        return cast("grpc.RpcMethodHandler[Any, Any]", patched)
