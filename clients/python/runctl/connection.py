"""How the client reaches a runctl server: address, API key, TLS, and the retry of UNAVAILABLE calls.

Both the sync and the asyncio client build their channel here. The API key and the retries are
interceptors on that channel, so they also apply to calls made through the raw stubs the clients
expose (`client.executions.GetExecution(...)`).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from runctl.errors import RpcFailure, UnavailableError, from_rpc_error

__all__ = [
    "API_KEY_METADATA",
    "DEFAULT_ADDR",
    "ConnectionSettings",
    "RetryPolicy",
]

DEFAULT_ADDR = "127.0.0.1:50051"
API_KEY_METADATA = "x-api-key"
ENV_ADDR = "RUNCTL_ADDR"
ENV_API_KEY = "RUNCTL_API_KEY"
ENV_TLS_CA = "RUNCTL_TLS_CA"
# Executions in the FULL view carry every node's output: allow more than grpc's 4 MB default.
MAX_RECEIVE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for calls that failed with UNAVAILABLE.

    `max_attempts` counts every try, the first included (1 = no retry). The n-th retry waits
    `min(initial_backoff * multiplier ** (n - 1), max_backoff)` seconds, less up to `jitter` of it
    at random so that many clients do not retry in step.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        base = min(self.initial_backoff * self.multiplier ** max(retry - 1, 0), self.max_backoff)
        # Not for security: spreading retries out only needs a cheap random number.
        return base * (1 - self.jitter * random.random())  # noqa: S311


# Unary calls: a few quick tries, about 3 s in all, then a clear error.
DEFAULT_RETRY = RetryPolicy()
# Watches: a server restart should not end a watch, so they keep trying for about half a minute.
DEFAULT_WATCH_RETRY = RetryPolicy(max_attempts=10)


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the server is and how to talk to it; None fields fall back to RUNCTL_* variables.

    `target` is HOST:PORT (env RUNCTL_ADDR, default 127.0.0.1:50051); `api_key` is sent as the
    `x-api-key` metadata of every call (env RUNCTL_API_KEY); `tls_ca` is a PEM file of root
    certificates to verify the server with (env RUNCTL_TLS_CA); `tls=True` without `tls_ca` uses the
    system's roots. Without either the channel is plaintext.
    """

    target: str = DEFAULT_ADDR
    api_key: str | None = None
    tls_ca: Path | None = None
    tls: bool = False
    retry: RetryPolicy = DEFAULT_RETRY
    options: Sequence[tuple[str, Any]] = field(default_factory=tuple)

    @classmethod
    def resolve(
        cls,
        addr: str | None = None,
        *,
        api_key: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        tls: bool = False,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> ConnectionSettings:
        """Settings from arguments, falling back to the environment, then to the defaults."""
        target = (addr or os.environ.get(ENV_ADDR) or DEFAULT_ADDR).strip()
        for scheme in ("grpc://", "http://", "dns:///"):
            target = target.removeprefix(scheme)
        if target.startswith("https://"):
            target, tls = target.removeprefix("https://"), True
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY) or None
        ca = tls_ca if tls_ca is not None else os.environ.get(ENV_TLS_CA) or None
        return cls(
            target=target.rstrip("/"),
            api_key=key or None,
            tls_ca=Path(ca).expanduser() if ca else None,
            tls=tls or ca is not None,
            retry=retry or DEFAULT_RETRY,
            options=tuple(options),
        )

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials, or None for a plaintext channel."""
        if self.tls_ca is not None:
            try:
                roots = self.tls_ca.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read TLS root certificates {self.tls_ca}: {exc.strerror}") from None
            return grpc.ssl_channel_credentials(root_certificates=roots)
        if self.tls:
            return grpc.ssl_channel_credentials()
        return None

    def channel_options(self) -> list[tuple[str, Any]]:
        """Channel arguments: reconnects paced like the retries, a larger receive limit, then `options`."""
        return [
            ("grpc.initial_reconnect_backoff_ms", max(int(self.retry.initial_backoff * 1000), 10)),
            ("grpc.max_reconnect_backoff_ms", max(int(self.retry.max_backoff * 1000), 10)),
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            *self.options,
        ]

    def sync_channel(self) -> grpc.Channel:
        """A grpc.Channel with the API key and retry interceptors."""
        credentials = self.credentials()
        options = self.channel_options()
        if credentials is None:
            channel = grpc.insecure_channel(self.target, options=options)
        else:
            channel = grpc.secure_channel(self.target, credentials, options=options)
        return grpc.intercept_channel(channel, _SyncInterceptor(self))

    def aio_channel(self) -> aio.Channel:
        """A grpc.aio.Channel with the API key and retry interceptors."""
        credentials = self.credentials()
        options = self.channel_options()
        interceptors: list[aio.ClientInterceptor] = [_AioUnaryInterceptor(self), _AioStreamInterceptor(self)]
        if credentials is None:
            return aio.insecure_channel(self.target, options=options, interceptors=interceptors)
        return aio.secure_channel(self.target, credentials, options=options, interceptors=interceptors)

    def with_key(self, metadata: Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]] | None:
        """The call's metadata plus `x-api-key`, unless the call sets its own."""
        pairs = list(metadata or ())
        if self.api_key and not any(key == API_KEY_METADATA for key, _ in pairs):
            pairs.append((API_KEY_METADATA, self.api_key))
        return pairs or None


def _unavailable(error: RpcFailure, settings: ConnectionSettings, attempts: int) -> RpcFailure:
    if isinstance(error, UnavailableError):
        error.attempts = attempts
        error.message = f"cannot reach runctl at {settings.target} ({attempts} attempts): {error.message}"
    return error


class _Budget:
    """Attempts left and the overall deadline of one call with retries."""

    def __init__(self, policy: RetryPolicy, timeout: float | None) -> None:
        self.policy = policy
        self.attempt = 1
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def next_delay(self, error: RpcFailure) -> float | None:
        """Seconds to wait before trying again, or None when the error is final."""
        if error.code() != grpc.StatusCode.UNAVAILABLE or self.attempt >= self.policy.max_attempts:
            return None
        delay = self.policy.backoff(self.attempt)
        remaining = self.remaining()
        if remaining is not None and remaining <= delay:
            return None
        self.attempt += 1
        return delay


class _SyncDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata: Any, timeout: float | None) -> None:
        self.method = base.method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class _SyncInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the API key to every call; retries unary calls on UNAVAILABLE; raises RpcFailure."""

    def __init__(self, settings: ConnectionSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep

    def _details(self, details: grpc.ClientCallDetails, timeout: float | None) -> _SyncDetails:
        return _SyncDetails(details, self.settings.with_key(details.metadata), timeout)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        budget = _Budget(self.settings.retry, client_call_details.timeout)
        while True:
            outcome = continuation(self._details(client_call_details, budget.remaining()), request)
            error = outcome.exception()
            if error is None:
                return outcome
            if not isinstance(error, grpc.RpcError):
                raise error
            failure = from_rpc_error(
                error, target=self.settings.target, method=client_call_details.method, attempts=budget.attempt
            )
            delay = budget.next_delay(failure)
            if delay is None:
                raise _unavailable(failure, self.settings, budget.attempt)
            self.sleep(delay)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details, client_call_details.timeout), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details, client_call_details.timeout), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details, client_call_details.timeout), request_iterator)


def _aio_details(
    settings: ConnectionSettings, details: aio.ClientCallDetails, timeout: float | None
) -> aio.ClientCallDetails:
    metadata = settings.with_key(list(details.metadata or ()))
    return aio.ClientCallDetails(
        details.method,
        timeout,
        aio.Metadata(*(metadata or ())),
        details.credentials,
        details.wait_for_ready,
    )


class _AioUnaryInterceptor(aio.UnaryUnaryClientInterceptor):
    """The asyncio twin of _SyncInterceptor for unary calls."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        budget = _Budget(self.settings.retry, client_call_details.timeout)
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        while True:
            call = await continuation(
                _aio_details(self.settings, client_call_details, budget.remaining()), request
            )
            try:
                await call
                return call
            except grpc.RpcError as error:
                failure = from_rpc_error(
                    error, target=self.settings.target, method=method, attempts=budget.attempt
                )
            delay = budget.next_delay(failure)
            if delay is None:
                raise _unavailable(failure, self.settings, budget.attempt)
            await asyncio.sleep(delay)


class _AioStreamInterceptor(aio.UnaryStreamClientInterceptor):
    """Adds the API key to asyncio server-streaming calls (watches reconnect on their own)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(
            _aio_details(self.settings, client_call_details, client_call_details.timeout), request
        )
