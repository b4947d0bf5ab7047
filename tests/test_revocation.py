"""A key revoked while its streams are open: every stream it holds ends within about a second,
over gRPC (UNAUTHENTICATED), SSE (a last `error` event) and Socket.IO (disconnected), while
another key's streams go on."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from runctl.errors import UnauthenticatedError
from runctl.v1 import common_pb2, event_pb2, event_pb2_grpc, execution_pb2
from runctl_server.store.api_keys import create_key, revoke_key
from runctl_server.store.database import create_db_engine
from tests.engine_helpers import Client, linear
from tests.support import running_server, settings_for, wait_for
from tests.workspaces import Keyed, keyed_server

NODE = shutil.which("node")
SOCKET_CLIENT = Path(__file__).parent / "node" / "revoked_client.mjs"
WAIT = linear({"id": "hold", "type": "wait"}, name="waits")
QUICK = linear({"id": "say", "type": "transform", "config": {"output": 1}}, name="quick")
QUIET = duration_pb2.Duration(seconds=60)  # no heartbeats: the streams are idle when the key goes


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    with keyed_server(tmp_path_factory) as server:
        yield server


def drain(messages: Any, into: queue.Queue[Any]) -> threading.Thread:
    """Reads a blocking stream in a thread, putting each item, then the error or "end", on `into`."""

    def read() -> None:
        try:
            for message in messages:
                into.put(message)
            into.put("end")
        except Exception as exc:
            into.put(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def last(into: queue.Queue[Any], timeout: float) -> Any:
    """The stream's final item (its error or "end"), skipping the messages before it."""
    deadline = time.monotonic() + timeout
    while True:
        item = into.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(item, Exception) or item == "end":
            return item


def _admitted(client: Client) -> bool:
    try:
        client.list_executions(page_size=1)
    except UnauthenticatedError:
        return False
    return True


def test_open_streams_end_when_their_key_is_revoked(keyed: Keyed) -> None:
    database = create_db_engine(keyed.db_url)
    doomed = create_key(database, "alpha", "doomed")
    target, base = keyed.handle.grpc_target, keyed.handle.http_url
    socket_client: subprocess.Popen[str] | None = None
    try:
        with (
            Client(target, api_key=doomed.key) as doomed_client,
            Client(target, api_key=keyed.alpha) as steady,
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            # The new key counts once it is in the server's key snapshot (refreshed each second).
            wait_for(lambda: _admitted(doomed_client), what="the new key to be admitted")
            run = steady.start(WAIT).id
            steady.wait(run, until=(common_pb2.EXECUTION_STATUS_PAUSED,))

            events = doomed_client.events
            grpc_events: queue.Queue[Any] = queue.Queue()
            drain(events.StreamEvents(event_pb2.StreamEventsRequest(heartbeat_interval=QUIET)), grpc_events)
            grpc_watch: queue.Queue[Any] = queue.Queue()
            watch = execution_pb2.WatchExecutionRequest(execution_id=run, heartbeat_interval=QUIET)
            drain(doomed_client.executions.WatchExecution(watch), grpc_watch)
            kept: queue.Queue[Any] = queue.Queue()
            kept_stream = steady.events.StreamEvents(event_pb2.StreamEventsRequest(heartbeat_interval=QUIET))
            drain(kept_stream, kept)

            sse: queue.Queue[Any] = queue.Queue()

            def read_sse() -> None:
                with http.stream(
                    "GET",
                    f"/api/workflows/execution/{run}/events?heartbeat=60",
                    headers={"x-api-key": doomed.key},
                ) as response:
                    sse.put(response.status_code)
                    for line in response.iter_lines():
                        sse.put(line)
                sse.put("end")

            threading.Thread(target=read_sse, daemon=True).start()
            assert sse.get(timeout=10) == 200

            assert NODE is not None, "node is needed for the Socket.IO client"
            socket_client = subprocess.Popen(
                [
                    NODE,
                    str(SOCKET_CLIENT),
                    json.dumps({"url": base, "apiKey": doomed.key, "timeoutMs": 20000}),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert socket_client.stdout is not None
            assert json.loads(socket_client.stdout.readline()) == {"connected": True}
            time.sleep(0.3)  # every stream is open and idle

            revoke_key(database, doomed.info.id)
            revoked_at = time.monotonic()
            for stream in (grpc_events, grpc_watch):
                error = last(stream, timeout=5)
                assert isinstance(error, grpc.RpcError), error
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "the stream was ended" in str(error.details())
            assert time.monotonic() - revoked_at < 3
            lines = []
            while (line := sse.get(timeout=5)) != "end":
                lines.append(line)
            assert "event: error" in lines, lines
            assert "not valid" in lines[lines.index("event: error") + 1]
            report = json.loads(socket_client.stdout.readline())
            assert report["disconnected"] == "io server disconnect"
            assert "not valid" in report["authError"]
            # The other key's stream goes on: it sees a run started after the revocation.
            after = steady.start(QUICK).id
            deadline = time.monotonic() + 10
            while True:
                item = kept.get(timeout=max(0.01, deadline - time.monotonic()))
                assert not isinstance(item, Exception) and item != "end", item
                if any(e.execution_id == after for e in item.events.events):
                    break
            kept_stream.cancel()
    finally:
        if socket_client is not None:
            socket_client.kill()
        database.dispose()


def test_dev_mode_streams_end_when_the_first_key_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    with running_server(settings_for(url)) as server, grpc.insecure_channel(server.grpc_target) as channel:
        stream = event_pb2_grpc.EventServiceStub(channel).StreamEvents(
            event_pb2.StreamEventsRequest(heartbeat_interval=QUIET)
        )
        received: queue.Queue[Any] = queue.Queue()
        drain(stream, received)
        assert received.get(timeout=10).HasField("heartbeat")  # open, keyless, on loopback
        database = create_db_engine(url)
        try:
            create_key(database, "alpha", "first")
        finally:
            database.dispose()
        error = last(received, timeout=5)
        assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "API key is required" in str(error.details())
