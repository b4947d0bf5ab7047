"""Several `runctl serve` processes (replicas) on one PostgreSQL database, and a recording HTTP server.

Used by tests/test_replicas.py and by bench/chaos.py and bench/replicas.py (which put the repository
root on sys.path to import it).

`Cluster` starts N replicas as subprocesses on one database, each on its own free ports with its own
log file (kept across restarts), and does to them what operations and failures do: kill(i) (SIGKILL),
restart(i) (same ports), stop(i) (SIGTERM, waits for the exit), pause(i) / resume(i) (SIGSTOP /
SIGCONT, a long GC or I/O stall). client(i) is a `runctl.client.Client` for replica i.

`RecordingHttpServer` is a real HTTP server on 127.0.0.1 for `http` nodes to call: it records every
request with its path, body and `Idempotency-Key` header and answers 200 JSON, after `?delay=` seconds
(or its default delay) when asked, so a test can count how often each node called out and with which
keys.

`audit` reads the database directly and tells, per run, how many terminal events it has and which node
keys completed more than once: the exactly-once figures of the tests and the chaos benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runctl.client import Client
from runctl.connection import RetryPolicy
from runctl.messages import stream_events_request
from tests.postgres import temporary_database

LOOPBACK = "127.0.0.1"
TERMINAL_EVENTS = ("EXECUTION_COMPLETED", "EXECUTION_FAILED", "EXECUTION_STOPPED")
FINISHED_STATUSES = ("completed", "error", "stopped")
# Unary calls of the harness's clients: a replica that is down should fail a call fast, not after the
# client's default 3 s of retries (calls are routed to live replicas; UNAVAILABLE there is a finding).
CALL_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.5)
# Watches ride out a replica restart (a few seconds) by reconnecting from their cursor.
WATCH_RETRY = RetryPolicy(max_attempts=40, initial_backoff=0.1, max_backoff=1.0)


def free_ports(count: int, taken: Iterable[int] = ()) -> list[int]:
    """`count` distinct free loopback ports, none of them in `taken`.

    All sockets stay bound until every port is picked, so the OS cannot hand out one port twice."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
            port = int(sock.getsockname()[1])
            if port not in taken:
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc; None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the replicas ------------------------------------------------------------------------------------


@dataclass
class Replica:
    """One `runctl serve` process slot: its ports and log stay the same across restarts."""

    index: int
    name: str
    grpc_port: int
    http_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False
    # Every process this slot ran, oldest first (pids, for CPU figures and lease owners).
    pids: list[int] = field(default_factory=list)
    # CPU seconds of the processes of this slot that have exited (read just before each kill or stop).
    retired_cpu: float = 0.0

    @property
    def grpc_target(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def running(self) -> bool:
        """The process exists (it may be paused)."""
        return self.process is not None and self.process.poll() is None

    @property
    def live(self) -> bool:
        """Running and not paused: it answers calls."""
        return self.running and not self.paused

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cpu_seconds(self) -> float:
        """CPU seconds of every process this slot ran so far."""
        current = process_cpu_seconds(self.process.pid) if self.running and self.process else None
        return self.retired_cpu + (current or 0.0)


class ClusterError(RuntimeError):
    """A replica would not start or stop as asked; the message holds its log."""


class Cluster:
    """N `runctl serve` processes on one database (see the module docstring).

    `lease_ttl` is passed as RUNCTL_LEASE_TTL_SECONDS (None: the server's default), each replica's
    name as RUNCTL_REPLICA_NAME;
    `env` adds or overrides variables for every replica. Use it as a context manager, or call start()
    and close().
    """

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        size: int = 3,
        *,
        lease_ttl: float | None = 2.0,
        env: Mapping[str, str] | None = None,
        log_level: str = "INFO",
        name: str = "replica",
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one replica")
        self.db_url = db_url
        self.workdir = workdir
        self.lease_ttl = lease_ttl
        self.log_level = log_level
        self.env = {
            "RUNCTL_DB_URL": db_url,
            # Drains quickly on SIGTERM even with watch streams open.
            "RUNCTL_SHUTDOWN_GRACE_SECONDS": "3",
            "RUNCTL_DRAIN_SECONDS": "0",
            **({"RUNCTL_LEASE_TTL_SECONDS": f"{lease_ttl:g}"} if lease_ttl is not None else {}),
            **(env or {}),
        }
        ports = free_ports(2 * size)
        workdir.mkdir(parents=True, exist_ok=True)
        self.replicas = [
            Replica(
                index=i,
                name=f"{name}-{i}",
                grpc_port=ports[2 * i],
                http_port=ports[2 * i + 1],
                log_path=workdir / f"{name}-{i}.log",
            )
            for i in range(size)
        ]
        self._clients: dict[int, Client] = {}
        self._lock = threading.Lock()
        self._turn = 0

    def __len__(self) -> int:
        return len(self.replicas)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, *, together: bool = False, timeout: float = 60) -> Cluster:
        """Start every replica and wait until each answers SERVING.

        By default the first replica starts alone (it applies the migrations to the empty database)
        and the others then start together. `together=True` starts all at once on whatever the
        database holds, as an operator starting a deployment would.
        """
        try:
            if together:
                for replica in self.replicas:
                    self._spawn(replica)
                for replica in self.replicas:
                    self._wait_serving(replica, timeout)
            else:
                first, *rest = self.replicas
                self._spawn(first)
                self._wait_serving(first, timeout)
                for replica in rest:
                    self._spawn(replica)
                for replica in rest:
                    self._wait_serving(replica, timeout)
        except BaseException:
            self.close()
            raise
        return self

    def _spawn(self, replica: Replica) -> None:
        if replica.running:
            raise ClusterError(f"{replica.name} is already running (pid {replica.pid})")
        env = {
            **os.environ,
            **self.env,
            "RUNCTL_GRPC_ADDR": replica.grpc_target,
            "RUNCTL_HTTP_ADDR": f"{LOOPBACK}:{replica.http_port}",
            "RUNCTL_REPLICA_NAME": replica.name,
        }
        with replica.log_path.open("ab") as log_file:
            log_file.write(
                f"===== {replica.name}: start {len(replica.pids) + 1} at {time.time():.3f}\n".encode()
            )
            log_file.flush()
            replica.process = subprocess.Popen(
                [sys.executable, "-m", "runctl.cli", "serve", "--log-level", self.log_level],
                env=env,
                cwd=self.workdir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        replica.paused = False
        replica.pids.append(replica.process.pid)
        self._drop_client(replica.index)

    def _wait_serving(self, replica: Replica, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(replica.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if not replica.running:
                    code = replica.process.returncode if replica.process else None
                    raise ClusterError(
                        f"{replica.name} exited with {code} while starting:\n{tail(replica.log(), 80)}"
                    )
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"{replica.name} did not answer SERVING within {timeout:g} s:\n"
                        + tail(replica.log(), 80)
                    )
                time.sleep(0.05)

    def kill(self, i: int) -> None:
        """SIGKILL replica i (paused or not) and reap it."""
        replica = self.replicas[i]
        if not replica.running or replica.process is None:
            raise ClusterError(f"{replica.name} is not running")
        replica.retired_cpu += process_cpu_seconds(replica.process.pid) or 0.0
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(timeout=30)
        replica.paused = False
        self._drop_client(i)

    def start_replica(self, i: int, timeout: float = 60) -> None:
        """Start replica i (alone) and wait until it serves."""
        replica = self.replicas[i]
        self._spawn(replica)
        self._wait_serving(replica, timeout)

    def restart(self, i: int, timeout: float = 60) -> None:
        """Start replica i again, on the same ports, and wait until it serves."""
        self.start_replica(i, timeout)

    def stop(self, i: int, timeout: float = 30) -> float:
        """SIGTERM replica i and wait for it to exit; answers the seconds it took. A replica that does
        not exit within `timeout` is killed and ClusterError raised."""
        replica = self.replicas[i]
        if not replica.running or replica.process is None:
            raise ClusterError(f"{replica.name} is not running")
        if replica.paused:
            self.resume(i)
        cpu = process_cpu_seconds(replica.process.pid) or 0.0
        began = time.monotonic()
        replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=30)
            raise ClusterError(
                f"{replica.name} did not exit within {timeout:g} s of SIGTERM:\n{tail(replica.log(), 80)}"
            ) from None
        finally:
            replica.retired_cpu += cpu
            self._drop_client(i)
        return time.monotonic() - began

    def pause(self, i: int) -> None:
        """SIGSTOP replica i: it keeps its sockets and connections but does nothing at all."""
        replica = self.replicas[i]
        if not replica.running or replica.process is None:
            raise ClusterError(f"{replica.name} is not running")
        replica.process.send_signal(signal.SIGSTOP)
        replica.paused = True

    def resume(self, i: int) -> None:
        """SIGCONT replica i."""
        replica = self.replicas[i]
        if replica.process is not None and replica.running:
            replica.process.send_signal(signal.SIGCONT)
        replica.paused = False

    def close(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after a few seconds) and close the clients."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        for replica in self.replicas:
            if replica.paused:
                self.resume(replica.index)
            if replica.running and replica.process is not None:
                replica.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 8
        for replica in self.replicas:
            if replica.process is None:
                continue
            try:
                replica.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(timeout=30)

    # -- reaching the replicas -----------------------------------------------------------------------

    def client(self, i: int) -> Client:
        """A client of replica i (one per replica, made again after each restart)."""
        with self._lock:
            client = self._clients.get(i)
            if client is None:
                client = Client(self.replicas[i].grpc_target, retry=CALL_RETRY, timeout=15)
                self._clients[i] = client
            return client

    def new_client(self, i: int, **kwargs: Any) -> Client:
        """A client of replica i of its own (for a watcher thread; the caller closes it)."""
        kwargs.setdefault("retry", CALL_RETRY)
        kwargs.setdefault("watch_retry", WATCH_RETRY)
        return Client(self.replicas[i].grpc_target, **kwargs)

    def _drop_client(self, i: int) -> None:
        with self._lock:
            client = self._clients.pop(i, None)
        if client is not None:
            client.close()

    def live(self) -> list[int]:
        """Indices of the replicas that answer calls now (running and not paused)."""
        return [replica.index for replica in self.replicas if replica.live]

    def next_live(self, exclude: Iterable[int] = ()) -> int:
        """The next live replica in round-robin order, skipping `exclude`."""
        excluded = set(exclude)
        with self._lock:
            for _ in range(len(self.replicas)):
                i = self._turn % len(self.replicas)
                self._turn += 1
                if self.replicas[i].live and i not in excluded:
                    return i
        raise ClusterError(f"no live replica outside {sorted(excluded)}: {self.describe()}")

    def other_live(self, *exclude: int) -> int:
        """The lowest-numbered live replica not in `exclude`."""
        for replica in self.replicas:
            if replica.live and replica.index not in exclude:
                return replica.index
        raise ClusterError(f"no live replica outside {sorted(exclude)}: {self.describe()}")

    # -- what the replicas say -------------------------------------------------------------------------

    def describe(self) -> str:
        """Each replica's state: up, paused or down."""
        return ", ".join(
            f"{r.name}={'paused' if r.paused else 'up' if r.running else 'down'}" for r in self.replicas
        )

    def logs(self, lines: int = 60) -> str:
        """The last `lines` lines of every replica's log, plus every error line, for failure messages."""
        parts = []
        for replica in self.replicas:
            text = replica.log()
            errors = [
                line
                for line in text.splitlines()
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
            ]
            state = "paused" if replica.paused else "up" if replica.running else "down"
            parts.append(
                f"----- {replica.name} ({state}, pids {replica.pids}) {replica.log_path}\n"
                + (f"error lines ({len(errors)}):\n" + "\n".join(errors[-20:]) + "\n" if errors else "")
                + f"last {lines} lines:\n{tail(text, lines)}"
            )
        return "\n".join(parts)

    def driver_of(self, execution_id: str) -> int | None:
        """The replica holding the run's lease, when the schema records one (`executions.lease_owner`
        naming a row of `replicas` with its pid); None when unknown, unowned, or not recorded."""
        owners = self.drivers([execution_id])
        return owners.get(execution_id)

    def drivers(self, execution_ids: Sequence[str]) -> dict[str, int]:
        """Lease owners of the given runs, by replica index (best effort, see driver_of)."""
        by_pid = {pid: replica.index for replica in self.replicas for pid in replica.pids}
        try:
            with psycopg.connect(self.db_url, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT e.id, r.pid FROM executions e JOIN replicas r ON r.id = e.lease_owner"
                    " WHERE e.id = ANY(%s)",
                    (list(execution_ids),),
                ).fetchall()
        except psycopg.Error:
            return {}
        return {str(run): by_pid[int(pid)] for run, pid in rows if int(pid) in by_pid}


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_cluster(
    workdir: Path,
    size: int = 3,
    *,
    lease_ttl: float | None = 2.0,
    together: bool = False,
    env: Mapping[str, str] | None = None,
    log_level: str = "INFO",
) -> Iterator[Cluster]:
    """A started cluster on a throwaway PostgreSQL database, stopped and dropped afterwards."""
    with (
        temporary_database() as db_url,
        Cluster(db_url, workdir, size, lease_ttl=lease_ttl, env=env, log_level=log_level) as cluster,
    ):
        cluster.start(together=together)
        yield cluster


# -- watchers ---------------------------------------------------------------------------------------------


class EventWatcher:
    """Follows StreamEvents on one replica in a thread, from the start of the log, keeping every event.

    With `reconnect`, the stream is the client's `stream_events`, which reopens it from its last cursor
    when the replica goes away (a kill and restart); without, any error ends the watch and is kept in
    `error`.
    """

    def __init__(self, cluster: Cluster, i: int, *, reconnect: bool = False, after_sequence: int = 0) -> None:
        self.replica = cluster.replicas[i]
        self.reconnect = reconnect
        self.after_sequence = after_sequence
        self.client = cluster.new_client(i)
        self.events: list[Any] = []
        self.messages = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._call: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.replica.name}", daemon=True)

    def start(self) -> EventWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            if self.reconnect:
                messages: Iterable[Any] = self.client.stream_events(
                    self.after_sequence, heartbeat_interval=1.0
                )
            else:
                request = stream_events_request(
                    self.after_sequence,
                    workflow_id="",
                    execution_id="",
                    batch_id="",
                    types=(),
                    heartbeat_interval=1.0,
                )
                self._call = self.client.events.StreamEvents(request)
                messages = self._call
            for message in messages:
                with self._lock:
                    self.messages += 1
                    if message.HasField("events"):
                        self.events.extend(message.events.events)
                if self._closed.is_set():
                    return
        except BaseException as exc:
            if not self._closed.is_set():
                self.error = exc

    def received(self) -> list[Any]:
        with self._lock:
            return list(self.events)

    def last_sequence(self) -> int:
        with self._lock:
            return int(self.events[-1].sequence) if self.events else 0

    def wait_for(self, sequence: int, timeout: float) -> bool:
        """Whether the watcher received an event with at least `sequence` within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.last_sequence() < sequence:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self._closed.set()
        if self._call is not None:
            self._call.cancel()
        self.client.close()
        self._thread.join(5)


# -- workflow documents -----------------------------------------------------------------------------


def linear(*middle: dict[str, Any], name: str, output: Any = None) -> dict[str, Any]:
    """start -> middle... -> end (with `output` as the end node's output when given)."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    if output is not None:
        nodes[-1]["config"] = {"output": output}
    return {
        "name": name,
        "nodes": nodes,
        "edges": [{"from": a["id"], "to": b["id"]} for a, b in pairwise(nodes)],
    }


def delay(node_id: str, secs: float) -> dict[str, Any]:
    return {"id": node_id, "type": "delay", "config": {"seconds": secs}}


def log(node_id: str, message: str = "{{ input.tag }}") -> dict[str, Any]:
    return {"id": node_id, "type": "log", "config": {"message": message}}


def http_node(node_id: str, url: str, *, wait: float = 0.0, in_loop: bool = False) -> dict[str, Any]:
    """POST {url}/{node_id} with a body naming the run's tag and the node (and the loop index), so the
    recording server can tell which node instance each request came from; answered after `wait` s."""
    body: dict[str, Any] = {"tag": "{{ input.tag }}", "node": node_id}
    if in_loop:
        body["index"] = "{{ index }}"
    config: dict[str, Any] = {"method": "POST", "url": f"{url}/{node_id}", "body": body}
    if wait:
        config["query"] = {"delay": wait}
    return {"id": node_id, "type": "http", "config": config}


# -- the outside world that http nodes call ------------------------------------------------------------


@dataclass(frozen=True)
class HttpCall:
    """One request as the recording server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    idempotency_key: str | None
    headers: dict[str, str]
    received_at: float


def _caller_gone(connection: socket.socket) -> bool:
    """Whether the peer closed the connection: it then reads as end-of-file, without waiting."""
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing sent: the caller still waits for the answer
    except OSError:
        return True


class RecordingHttpServer:
    """A threaded HTTP server on 127.0.0.1 that records every request and answers 200 JSON.

    Every answer is `{"ok": true, "path": ..., "echo": <the JSON body>}`, sent after `?delay=<seconds>`
    of the request or, without one, after the server's `delay`. Answers to a caller that has gone
    (a killed replica) are dropped quietly.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._calls: list[HttpCall] = []
        # Per request (by position in _calls) once its answer is due: whether its caller had gone.
        self._gone: dict[int, bool] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                index = outer._record(
                    HttpCall(
                        method=self.command,
                        path=parts.path,
                        query=query,
                        body=body,
                        idempotency_key=self.headers.get("Idempotency-Key"),
                        headers=dict(self.headers),
                        received_at=time.time(),
                    )
                )
                pause = outer.delay
                if "delay" in query:
                    with contextlib.suppress(ValueError):
                        pause = min(float(query["delay"][0]), 60.0)
                if pause > 0:
                    time.sleep(pause)
                outer._ended(index, _caller_gone(self.connection))
                data = json.dumps({"ok": True, "path": parts.path, "echo": body}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
                    super().handle_error(request, client_address)

        self.server = Server((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="recording-http", daemon=True)

    def _record(self, call: HttpCall) -> int:
        with self._arrived:
            self._calls.append(call)
            self._arrived.notify_all()
            return len(self._calls) - 1

    def _ended(self, index: int, gone: bool) -> None:
        with self._lock:
            self._gone[index] = gone

    def ended(self) -> list[tuple[HttpCall, bool]]:
        """The requests whose answer was due, each with whether its caller had gone (closed the
        connection) by then, so the answer could reach nobody."""
        with self._lock:
            return [(self._calls[index], gone) for index, gone in sorted(self._gone.items())]

    def start(self) -> RecordingHttpServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> RecordingHttpServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def calls(self) -> list[HttpCall]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def wait_for(self, predicate: Callable[[list[HttpCall]], bool], timeout: float) -> list[HttpCall]:
        """Wait until `predicate(calls)` holds; answers the calls (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not predicate(list(self._calls)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._calls)} requests arrived; the condition never held")
                self._arrived.wait(min(remaining, 0.2))
            return list(self._calls)

    def keys_by_node(self) -> dict[tuple[str, str], list[str | None]]:
        """The Idempotency-Key of every request sent by an `http_node`, by (run tag, node key): the
        node key is `loop[<index>].<node id>` inside the loop of tests/test_replicas.py, else the id."""

        def node(call: HttpCall) -> tuple[str, str]:
            body = call.body if isinstance(call.body, dict) else {}
            index = body.get("index")
            name = str(body.get("node"))
            return str(body.get("tag")), f"loop[{index}].{name}" if index is not None else name

        return self.keys_by(node)

    def keys_by(self, group: Callable[[HttpCall], Any]) -> dict[Any, list[str | None]]:
        """The Idempotency-Key of every request, grouped by `group(call)`, in arrival order."""
        grouped: dict[Any, list[str | None]] = defaultdict(list)
        for call in self.calls():
            grouped[group(call)].append(call.idempotency_key)
        return dict(grouped)


# -- exactly once, from the database ---------------------------------------------------------------------


@dataclass
class RunAudit:
    """What the event log and the executions table say about one run."""

    execution_id: str
    status: str | None = None  # None: no such row
    parent_execution_id: str | None = None
    terminal_events: list[str] = field(default_factory=list)
    started_events: int = 0
    node_completions: Counter[str] = field(default_factory=Counter)
    sequences: list[int] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return bool(self.terminal_events)

    @property
    def ended_twice(self) -> bool:
        return len(self.terminal_events) > 1

    @property
    def completed(self) -> bool:
        return self.terminal_events.count("EXECUTION_COMPLETED") >= 1

    @property
    def nodes_completed_twice(self) -> dict[str, int]:
        return {key: n for key, n in self.node_completions.items() if n > 1}

    def problems(self) -> list[str]:
        """Why this run is not 'ended exactly once, each node completed at most once'."""
        found = []
        if self.status is None:
            found.append("no executions row")
        if len(self.terminal_events) != 1:
            found.append(f"{len(self.terminal_events)} terminal events {self.terminal_events}")
        if self.started_events > 1:
            found.append(f"{self.started_events} EXECUTION_STARTED events")
        if self.nodes_completed_twice:
            found.append(f"nodes completed more than once: {self.nodes_completed_twice}")
        if self.status is not None and self.terminal_events and self.status not in FINISHED_STATUSES:
            found.append(f"status {self.status!r} after a terminal event")
        return found


def audit(
    db_url: str, execution_ids: Iterable[str] | None = None, *, children: bool = True
) -> dict[str, RunAudit]:
    """Per run: its status, terminal events, EXECUTION_STARTED count and NODE_COMPLETED count per node
    key, read straight from the database. Without ids: every run in the database. With `children`,
    runs whose parent is among the ids are included (sub-workflows)."""
    wanted = None if execution_ids is None else list(execution_ids)
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        if wanted is None:
            rows = conn.execute("SELECT id, status, parent_execution_id FROM executions").fetchall()
        else:
            rows = conn.execute(
                "SELECT id, status, parent_execution_id FROM executions WHERE id = ANY(%s)"
                + (" OR parent_execution_id = ANY(%s)" if children else ""),
                (wanted, wanted) if children else (wanted,),
            ).fetchall()
        runs = {str(run): RunAudit(str(run), str(status), parent) for run, status, parent in rows}
        for run in wanted or ():
            runs.setdefault(run, RunAudit(run))
        events = conn.execute(
            "SELECT sequence, execution_id, type, payload FROM events WHERE execution_id = ANY(%s)"
            " AND type IN ('EXECUTION_STARTED', 'EXECUTION_COMPLETED', 'EXECUTION_FAILED',"
            " 'EXECUTION_STOPPED', 'NODE_COMPLETED') ORDER BY sequence",
            (list(runs),),
        ).fetchall()
    for sequence, run, kind, payload in events:
        record = runs[str(run)]
        record.sequences.append(int(sequence))
        if kind in TERMINAL_EVENTS:
            record.terminal_events.append(str(kind))
        elif kind == "EXECUTION_STARTED":
            record.started_events += 1
        else:
            key = json.loads(payload).get("nodeKey") if payload else None
            record.node_completions[str(key)] += 1
    return runs


def event_sequences(db_url: str) -> list[int]:
    """Every sequence number in the event log, ascending."""
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        return [int(row[0]) for row in conn.execute("SELECT sequence FROM events ORDER BY sequence")]
