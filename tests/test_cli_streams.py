"""`runctl run FILE --watch` and `runctl batch` follow the watch streams (WatchExecution, WatchBatch):
no GetExecution or GetBatch calls, as the server's own per-method counters show, and a connection cut
mid-stream is picked up again from the cursor, so the command still ends as the run did."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runctl.cli.streams import follow_execution
from runctl.client import Client
from runctl.v1 import common_pb2, execution_pb2
from tests.engine_helpers import linear
from tests.observability import Scrape
from tests.support import LOOPBACK, ServerThread, running_server, settings_for

RUNCTL = str(Path(sys.executable).parent / "runctl")
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
# Long enough that a command polling every 0.3 s would have asked for the run several times.
SLOW = linear({"id": "settle", "type": "delay", "config": {"seconds": 1}}, name="slow")
GREETS = linear({"id": "greet", "type": "transform", "config": {"output": "hi"}}, name="greets")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflows")
    (root / "slow.json").write_text(json.dumps(SLOW))
    (root / "batch").mkdir()
    for index in range(3):
        document = SLOW if index == 0 else GREETS
        (root / "batch" / f"flow-{index}.json").write_text(json.dumps({**document, "name": f"flow {index}"}))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Iterator[ServerThread]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with running_server(settings_for(url, workflows_dirs=(files,))) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as runctl:
        yield runctl


def runctl(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNCTL, "--addr", target, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )


def calls(scrape: Scrape, method: str) -> float:
    return scrape.value("grpc_server_started_total", grpc_method=method)


def test_run_watch_and_batch_read_streams_not_get_calls(server: ServerThread, files: Path) -> None:
    before = Scrape(server.http_url)
    ran = runctl(server.grpc_target, "run", str(files / "slow.json"), "--watch")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "completed" in ran.stdout and "settle" in ran.stdout
    as_json = runctl(server.grpc_target, "run", str(files / "slow.json"), "--watch", "--json")
    assert as_json.returncode == 0, as_json.stderr
    finished = json.loads(as_json.stdout)
    assert finished["status"] == "EXECUTION_STATUS_COMPLETED"
    assert [node["status"] for node in finished["nodes"]] == ["NODE_STATUS_COMPLETED"] * 3

    batch = runctl(server.grpc_target, "batch", str(files / "batch"), "--concurrency", "1")
    assert batch.returncode == 0, batch.stdout + batch.stderr
    assert "3 completed" in batch.stdout
    batch_json = runctl(server.grpc_target, "batch", str(files / "batch"), "--json")
    assert batch_json.returncode == 0, batch_json.stderr
    record = json.loads(batch_json.stdout)
    assert (record["status"], record["completed"]) == ("BATCH_STATUS_COMPLETED", 3)
    assert len(record["executions"]) == 3
    after = Scrape(server.http_url)

    assert calls(after, "GetExecution") == calls(before, "GetExecution")
    assert calls(after, "GetBatch") == calls(before, "GetBatch")
    assert calls(after, "WatchExecution") - calls(before, "WatchExecution") >= 2
    assert calls(after, "WatchBatch") - calls(before, "WatchBatch") >= 2


class CuttableProxy:
    """A TCP proxy on loopback in front of the server, whose connections the test can cut at once,
    as a network failure would; new connections keep working."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server((LOOPBACK, 0))
        self.target = f"{LOOPBACK}:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self.accepted += 1
                self._open += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def connections(self) -> int:
        with self._lock:
            return len(self._open) // 2

    def cut(self) -> None:
        """Drop every open connection (both ends), as a failed network would."""
        with self._lock:
            doomed, self._open = self._open, []
        for end in doomed:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


def poll(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("command_name", ["run", "batch"])
def test_the_command_reconnects_after_the_connection_is_cut(
    server: ServerThread, client: Client, files: Path, command_name: str
) -> None:
    name = f"cut-{uuid.uuid4().hex[:8]}"
    folder = files / name  # under the server's workflow folder, for the batch
    folder.mkdir()
    workflow = folder / "waits.json"
    workflow.write_text(json.dumps(linear({"id": "confirm", "type": "wait"}, name=name)))
    args = ["run", str(workflow), "--watch"] if command_name == "run" else ["batch", str(folder)]
    proxy = CuttableProxy(server.grpc_target)
    try:
        command = subprocess.Popen(
            [RUNCTL, "--addr", proxy.target, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )
        try:

            def waiting() -> bool:
                latest = client.latest(statuses=[PAUSED])
                return latest is not None and latest.workflow_name == name

            poll("the run to wait at its pause point", waiting)
            poll("the command to hold its stream", lambda: proxy.connections() >= 1)
            paused = client.latest(statuses=[PAUSED])
            assert paused is not None
            (point,) = client.get(paused.id).pause_points
            connected_before = proxy.accepted

            proxy.cut()
            client.approve(point.context_id, {"confirmed": True})

            stdout, stderr = command.communicate(timeout=60)
        finally:
            if command.poll() is None:
                command.kill()
                command.wait()
    finally:
        proxy.close()
    assert command.returncode == 0, stdout + stderr
    assert "completed" in stdout and "Traceback" not in stderr
    assert proxy.accepted > connected_before  # it came back on a new connection


def test_the_state_built_from_events_is_the_servers(client: Client) -> None:
    # The live table is the first snapshot with the events applied: by the end it must show what the
    # server's own record of the run shows, node by node.
    loop = linear(
        {"id": "settle", "type": "delay", "config": {"seconds": 1}},  # the first snapshot sees it run
        {
            "id": "each",
            "type": "for_each",
            "config": {"items": "input.items"},
            "body": {"nodes": [{"id": "cell", "type": "transform", "config": {"output": "{{ item }}"}}]},
        },
        {"id": "fails", "type": "fail", "config": {"message": "on purpose"}},
        name="built from events",
    )
    run = client.start(loop, input={"items": [1, 2]})
    shown: list[execution_pb2.Execution] = []

    def record(state: execution_pb2.Execution) -> None:
        copy = execution_pb2.Execution()
        copy.CopyFrom(state)
        shown.append(copy)

    final = follow_execution(client, run.id, until=lambda _: False, changed=record)
    assert final.status == common_pb2.EXECUTION_STATUS_ERROR
    assert shown[0].status == common_pb2.EXECUTION_STATUS_RUNNING  # what follows came from events
    built = shown[-1]
    assert (built.status, built.error.message) == (final.status, final.error.message)

    def nodes(execution: execution_pb2.Execution) -> list[tuple[str, str, int, int]]:
        return sorted(
            (node.node_id, str(list(node.stack)), node.status, node.attempts) for node in execution.nodes
        )

    assert nodes(built) == nodes(final)
