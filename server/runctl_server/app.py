"""Build and run the runctl process: one event loop serving gRPC and HTTP over one database."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import uvicorn
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy.engine import Engine as DatabaseEngine

from runctl_server.api.auth import DEV_MODE_MESSAGE, Authenticator, is_loopback_host
from runctl_server.api.interceptors import AuthInterceptor, ErrorMappingInterceptor, PerMethod
from runctl_server.api.observing import DatabaseGate, ObservingInterceptor
from runctl_server.api.preserialized import PreserializedInterceptor
from runctl_server.api.reflection import enable_reflection
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.api.servicers import Servicers
from runctl_server.api.services import register_all
from runctl_server.clock import SYSTEM_CLOCK, Clock
from runctl_server.engine.cluster import default_replica_name
from runctl_server.engine.engine import Engine
from runctl_server.engine.gauges import EngineGauges
from runctl_server.engine.retention import Retention
from runctl_server.http.app import build_http_app
from runctl_server.http.bridge import Services
from runctl_server.observe import tracing
from runctl_server.observe.metrics import Metrics, ReadAtScrape
from runctl_server.settings import Address, Settings
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import head_revision, known_revisions, upgrade_to_head
from runctl_server.store.probe import DatabaseProbe, Readiness
from runctl_server.store.process_lock import DatabaseInUse, ProcessLock, acquire
from runctl_server.store.retention import PruneCounts
from runctl_server.store.server_keys import RESUME_LINKS, server_key

log = logging.getLogger("runctl")


class StartupError(RuntimeError):
    """The server cannot start (port taken, database unreachable); the message says why."""


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the runctl process owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind_http_socket(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets whose proto says TCP, and
    # without it every response (headers, then body) waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot bind HTTP to {address}: {exc.strerror}") from None
    return sock


def _read_tls(cert_file: Path, key_file: Path) -> tuple[bytes, bytes]:
    """The PEM certificate chain and key, checked to be a matching pair before anything binds."""
    pem: list[bytes] = []
    for what, path in (("certificate", cert_file), ("key", key_file)):
        try:
            pem.append(path.read_bytes())
        except OSError as exc:
            raise StartupError(f"cannot read the TLS {what} {path}: {exc.strerror}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise StartupError(
            f"the TLS certificate {cert_file} and key {key_file} are not a usable PEM pair: {exc}"
        ) from None
    return pem[0], pem[1]


class RunctlServer:
    """The whole service. `start()` binds and serves; `stop()` drains gracefully."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        # The time that timers and the API-key snapshot go by (tests may move it by hand).
        self.clock = clock
        self.engine: Engine | None = None
        self.database: DatabaseEngine | None = None
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._http: _EmbeddedUvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._serving = False
        self._stopped = asyncio.Event()
        self._servicers: Servicers | None = None
        self._service_names: list[str] = []
        self.authenticator: Authenticator | None = None
        self._links: ResumeLinks | None = None
        self._tls: tuple[bytes, bytes] | None = None
        self._db_lock: ProcessLock | None = None
        self.metrics: Metrics | None = None
        self.probe: DatabaseProbe | None = None
        self.retention: Retention | None = None
        self._draining = False

    @property
    def grpc_target(self) -> str:
        return str(Address(self.settings.grpc_addr.host, self.grpc_port))

    @property
    def http_url(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        return f"{scheme}://{Address(self.settings.http_addr.host, self.http_port)}"

    async def start(self) -> None:
        if self.settings.tls_cert_file is not None and self.settings.tls_key_file is not None:
            self._tls = _read_tls(self.settings.tls_cert_file, self.settings.tls_key_file)
        self.database = create_db_engine(
            self.settings.db_url, sqlite_synchronous=self.settings.sqlite_synchronous
        )
        try:
            # Before migrations: a second process must not even touch a SQLite file that one serves.
            self._db_lock = acquire(self.database.url)
        except DatabaseInUse as exc:
            self.database.dispose()
            raise StartupError(str(exc)) from None
        except OSError as exc:
            self.database.dispose()
            raise StartupError(f"cannot prepare the database: {exc}") from None
        try:
            await asyncio.to_thread(upgrade_to_head, self.database)
        except Exception as exc:
            self._close_database()
            raise StartupError(f"cannot prepare the database: {exc}") from exc
        self.authenticator = Authenticator(self.database, clock=self.clock)
        await self._check_dev_mode()
        tracing.configure_from_env()
        self.metrics = Metrics() if self.settings.metrics else None
        self.probe = DatabaseProbe(
            self.database, head_revision(), known_revisions(), self._on_database_change
        )
        link_keys = [key.encode() for key in self.settings.resume_link_keys] or [
            await asyncio.to_thread(server_key, self.database, RESUME_LINKS)
        ]
        self.engine = Engine(
            self.database,
            workflows_dirs=self.settings.workflows_dirs,
            watch_buffer=self.settings.watch_buffer_events,
            ended_runs_kept=self.settings.ended_runs_kept,
            limits=self.settings.limits,
            secret_overlap_seconds=self.settings.secret_overlap_seconds,
            replica_name=self.settings.replica_name or default_replica_name(self.settings.grpc_addr.port),
            lease_ttl=self.settings.lease_ttl_seconds,
            metrics=self.metrics,
            clock=self.clock,
        )
        await self.engine.start()
        if self.metrics is not None:
            engine = self.engine
            gauges = EngineGauges(
                reader=engine.reader,
                clock=engine.clock,
                scheduler=engine.scheduler,
                hub=engine.hub,
                writer=engine.writer,
                relay=engine.relay,
                cluster=engine.cluster,
            )
            self.metrics.add_collector(ReadAtScrape(gauges.samples))
        self._links = ResumeLinks(self.settings.base_url, link_keys)
        await self._start_grpc()
        await self._start_http()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        for name in self._service_names:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._serving = True
        self.probe.start()
        if self.settings.retention_seconds is not None:
            metrics, ended = self.metrics, self.engine.queries.ended

            def pruned(counts: PruneCounts) -> None:
                ended.pruned()
                if metrics is not None:
                    metrics.pruned_runs.inc(counts.runs)

            self.retention = Retention(self.database, self.settings.retention_seconds, on_pruned=pruned)
            self.engine.in_background(self.retention.run())
        log.info(
            "runctl serving gRPC on %s and HTTP on %s (database %s)",
            self.grpc_target,
            self.http_url,
            self.database.url.render_as_string(hide_password=True),
        )

    async def _on_database_change(self, reachable: bool) -> None:
        """Health follows the database; once it is back, runs whose drivers gave up go on."""
        if self._draining:
            return
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if reachable
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self._health.set("", status)
        for name in self._service_names:
            await self._health.set(name, status)
        if reachable and self.engine is not None:
            resumed = await self.engine.recover_after_outage()
            if resumed:
                log.info("the database is back: %d runs go on", resumed)

    def _database_up(self) -> bool:
        return self.probe is None or self.probe.up

    async def readiness(self) -> Readiness:
        """Ready: the database answers within a short timeout, its schema is at head, not draining."""
        if self.probe is None:
            return Readiness(False, {"starting": True})
        return await self.probe.readiness(draining=self._draining)

    async def metrics_text(self) -> bytes | None:
        """The Prometheus exposition; None with metrics off. Built off the event loop: the gauges read
        the database."""
        if self.metrics is None:
            return None
        from prometheus_client import generate_latest

        return await asyncio.to_thread(generate_latest, self.metrics.registry)

    async def _check_dev_mode(self) -> None:
        """Without keys only loopback callers are served, so binding a public address would serve no
        one while looking open: refuse to start instead."""
        assert self.authenticator is not None and self.database is not None
        if not await self.authenticator.dev_mode():
            return
        public = [
            f"{name} {address}"
            for name, address in (("gRPC", self.settings.grpc_addr), ("HTTP", self.settings.http_addr))
            if not is_loopback_host(address.host)
        ]
        if public:
            self._close_database()
            raise StartupError(
                f"{DEV_MODE_MESSAGE}, but {' and '.join(public)} is not a loopback address: "
                "create a key first (runctl keys create --workspace NAME) or bind 127.0.0.1"
            )
        log.warning("%s: only callers on this machine are served", DEV_MODE_MESSAGE)

    async def _start_grpc(self) -> None:
        assert self.authenticator is not None
        server = aio.server(
            # The first interceptor is the outermost: a call is authenticated before anything else runs.
            # Each wraps a method's handler the same way for every call: built once per method.
            interceptors=[
                PerMethod(
                    [
                        ObservingInterceptor(self.metrics),
                        DatabaseGate(self._database_up),
                        AuthInterceptor(self.authenticator),
                        ErrorMappingInterceptor(),
                        PreserializedInterceptor(),
                    ]
                )
            ],
            options=[
                ("grpc.max_receive_message_length", self.settings.limits.max_grpc_message_bytes),
                # A port another process serves is an error, not a port silently shared with it.
                ("grpc.so_reuseport", 0),
            ],
        )
        assert self.engine is not None and self._links is not None
        # The same servicer objects answer gRPC and, through the HTTP shim, HTTP.
        self._servicers = Servicers.build(self.engine, self._links)
        self._service_names = register_all(server, self._servicers.by_name())
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        enable_reflection([*self._service_names, health.SERVICE_NAME], server)
        address = self.settings.grpc_addr
        try:
            if self._tls is None:
                self.grpc_port = server.add_insecure_port(str(address))
            else:
                key_pair = (self._tls[1], self._tls[0])  # grpc takes (private key, certificate chain)
                credentials = grpc.ssl_server_credentials([key_pair])
                self.grpc_port = server.add_secure_port(str(address), credentials)
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port and address.port:
            raise StartupError(f"cannot bind gRPC to {address}: address in use or not available")
        await server.start()
        self._grpc = server

    async def _start_http(self) -> None:
        assert self._servicers is not None, "the gRPC servicers are built first"
        sock = _bind_http_socket(self.settings.http_addr)
        self.http_port = sock.getsockname()[1]
        app = build_http_app(
            lambda: self._serving,
            Services(self._servicers, self.authenticator, self.engine),
            max_body_bytes=self.settings.http_max_body_bytes,
            engine=self.engine,
            authenticator=self.authenticator,
            links=self._links,
            readiness=self.readiness,
            metrics_text=self.metrics_text,
            metrics=self.metrics,
            database_up=self._database_up,
        )
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=int(self.settings.shutdown_grace_seconds),
            ssl_certfile=self.settings.tls_cert_file if self._tls else None,
            ssl_keyfile=self.settings.tls_key_file if self._tls else None,
        )
        self._http = _EmbeddedUvicorn(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]), name="runctl-http")
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise StartupError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    async def drain(self, seconds: float | None = None, cut_short: asyncio.Event | None = None) -> None:
        """Say NOT_SERVING and go on serving every call for `seconds` (the drain period), so load
        balancers see it and send new calls elsewhere; `cut_short` ends the wait early."""
        seconds = self.settings.drain_seconds if seconds is None else seconds
        self._serving = False
        self._draining = True
        await self._health.enter_graceful_shutdown()
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await (cut_short or asyncio.Event()).wait()

    async def stop(self, grace: float | None = None) -> None:
        """Say NOT_SERVING; stop accepting calls; end open streams at once (UNAVAILABLE, reason
        SHUTTING_DOWN, with the cursor to resume from); let in-flight unary calls finish within `grace`
        seconds; then close. `drain()` first gives load balancers time to notice."""
        if self._stopped.is_set():
            return
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        self._serving = False
        self._draining = True
        if self.probe is not None:
            await self.probe.stop()
        await self._health.enter_graceful_shutdown()
        if self.engine is not None:
            self.engine.end_streams()
        if self._http is not None:
            self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._http_task is not None:
            try:
                async with asyncio.timeout(grace + 5):  # uvicorn waits for its connections to close
                    await self._http_task
            except TimeoutError:
                log.warning(
                    "stopping: the HTTP server did not stop within %gs; going on without it", grace + 5
                )
        if self.engine is not None:
            await self.engine.stop()
        self._close_database()
        self._stopped.set()
        log.info("runctl stopped")

    def _close_database(self) -> None:
        if self.database is not None:
            self.database.dispose()
        if self._db_lock is not None:
            self._db_lock.release()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def build_server(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> RunctlServer:
    """The single entry point: tests pass port 0 and a temp database (and may pass a ManualClock)
    and get the real service."""
    return RunctlServer(settings, clock)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    server = build_server(settings)
    await server.start()
    # Start-up objects live for the whole process: keep them out of every collection, and collect
    # young objects less often (the hot path allocates many short-lived ones).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal() -> None:
        # A second signal during the drain period skips the rest of it.
        (hurry if stop_requested.is_set() else stop_requested).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop_requested.wait()
    log.info(
        "signal received: health NOT_SERVING; serving calls for %gs more, then stopping",
        settings.drain_seconds,
    )
    await server.drain(cut_short=hurry)
    log.info(
        "drain period over: open streams end now, in-flight calls get %gs", settings.shutdown_grace_seconds
    )
    await server.stop()
    tracing.shutdown()  # flushes the spans not exported yet
