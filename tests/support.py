"""Start the real runctl server for tests: in a thread with its own event loop, or as a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runctl_server.app import RunctlServer, build_server
from runctl_server.clock import SYSTEM_CLOCK, Clock
from runctl_server.settings import Address, Settings
from runctl_server.store.api_keys import create_key
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
# How often the polling helpers look again: quick enough not to slow a test, slow enough not to
# load a server shared by a whole module.
POLL_INTERVAL = 0.05


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 20, interval: float = POLL_INTERVAL, what: str = ""
) -> T:
    """Call `probe` until it answers something truthy, and return that; fail after `timeout` s.

    For "wait until X has happened", instead of a sleep long enough on a quiet machine: it returns
    as soon as X holds, and on a loaded one it still waits up to the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or repr(probe)} (last answer {answer!r})")
        time.sleep(interval)


def eventually(check: Callable[[], T], *, timeout: float = 20, interval: float = POLL_INTERVAL) -> T:
    """Call `check`, a function that asserts, until it passes, and return what it returns; after
    `timeout` s its last AssertionError is raised, so the failure says what did not hold."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


class _KeyMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds an API key to every call, as a real client configured with a key does."""

    def __init__(self, key: str) -> None:
        self._key = key

    def _with_key(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), ("x-api-key", self._key)]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_key(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_key(details), request)


def keyed_channel(target: str, key: str) -> grpc.Channel:
    """An insecure channel whose calls all carry `key` (close it when done)."""
    return grpc.intercept_channel(grpc.insecure_channel(target), _KeyMetadata(key))


def create_api_key(db_url: str, workspace: str) -> str:
    """A new key for `workspace` in the database at `db_url` (made and migrated when missing)."""
    database = create_db_engine(db_url)
    try:
        upgrade_to_head(database)
        return create_key(database, workspace, "test").key
    finally:
        database.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def settings_for(db_url: str, **overrides: Any) -> Settings:
    """Settings for a server on free loopback ports."""
    return Settings(
        db_url=db_url,
        grpc_addr=Address(LOOPBACK, 0),
        http_addr=Address(LOOPBACK, 0),
        shutdown_grace_seconds=2.0,
        **overrides,
    )


@dataclass
class ServerThread:
    """A real RunctlServer running on an event loop in a background thread."""

    server: RunctlServer
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> ServerThread:
        self.thread = threading.Thread(target=self.loop.run_forever, name="runctl-server", daemon=True)
        self.thread.start()
        try:
            self.run(self.server.start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            raise
        return self

    def stop(self) -> None:
        try:
            self.run(self.server.stop(grace=1.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread is not None:
                self.thread.join(10)
            self.loop.close()

    @property
    def grpc_target(self) -> str:
        return self.server.grpc_target

    @property
    def http_url(self) -> str:
        return self.server.http_url


@contextmanager
def running_server(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Iterator[ServerThread]:
    """A real server in a thread; with a ManualClock its timers and key snapshot go by that clock."""
    handle = ServerThread(build_server(settings, clock=clock)).start()
    try:
        yield handle
    finally:
        handle.stop()


def wait_serving(target: str, timeout: float = 30) -> None:
    """Poll grpc.health.v1 until the server answers SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"runctl at {target} did not become SERVING")
            time.sleep(0.1)


@dataclass
class ServerProcess:
    """`runctl serve` as a subprocess, for signal and crash tests."""

    process: subprocess.Popen[str]
    grpc_target: str
    http_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def launch_server(db_url: str, workdir: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
    """Start `runctl serve` without waiting for it: several can then start at once (see `await_serving`)."""
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "RUNCTL_DB_URL": db_url,
        "RUNCTL_GRPC_ADDR": f"{LOOPBACK}:{grpc_port}",
        "RUNCTL_HTTP_ADDR": f"{LOOPBACK}:{http_port}",
        # Tests stop servers often; the drain period has its own test (tests/test_drain.py).
        "RUNCTL_DRAIN_SECONDS": "0",
        **(extra_env or {}),
    }
    log_path = workdir / f"server-{grpc_port}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "runctl.cli", "serve"],
            env=env,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return ServerProcess(process, f"{LOOPBACK}:{grpc_port}", f"http://{LOOPBACK}:{http_port}", log_path)


def await_serving(handle: ServerProcess, timeout: float = 30) -> ServerProcess:
    """Wait until a launched server answers SERVING; kill it and show its log if it does not, and
    fail at once, rather than at the timeout, if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            wait_serving(handle.grpc_target, timeout=0)
            return handle
        except TimeoutError:
            pass
        if handle.process.poll() is not None:
            raise TimeoutError(
                f"server exited ({handle.process.returncode}) instead of serving; log:\n{handle.log()}"
            )
        if time.monotonic() > deadline:
            handle.process.kill()
            handle.process.wait()
            raise TimeoutError(f"server did not start; log:\n{handle.log()}")
        time.sleep(0.1)


def spawn_server(db_url: str, workdir: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
    return await_serving(launch_server(db_url, workdir, extra_env))
