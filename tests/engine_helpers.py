"""Helpers for engine tests: start runs through the shipped client and wait for them."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

import runctl
from runctl.connection import RetryPolicy
from runctl.v1 import common_pb2, execution_pb2
from tests.postgres import temporary_database
from tests.support import running_server, settings_for, wait_for

ExecutionStatus = common_pb2.ExecutionStatus
NO_RETRY = RetryPolicy(max_attempts=1)
FINISHED = (
    common_pb2.EXECUTION_STATUS_COMPLETED,
    common_pb2.EXECUTION_STATUS_ERROR,
    common_pb2.EXECUTION_STATUS_STOPPED,
)


class Client(runctl.Client):
    """The shipped client, as a test uses it: no retries, so a test sees each answer as the server
    gave it, a 10 s deadline per call, and `run` (start a document, wait for its end)."""

    def __init__(self, target: str, *, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(target, api_key=api_key, retry=NO_RETRY, timeout=10, **kwargs)

    def wait(
        self,
        execution_id: str,
        *,
        until: Iterable[ExecutionStatus.ValueType] = FINISHED,
        timeout: float | None = 20,
        poll_interval: float = 0.05,
    ) -> execution_pb2.Execution:
        """As the shipped wait, bounded by default; a timeout shows the run as it stood."""
        try:
            return super().wait(execution_id, until=until, timeout=timeout, poll_interval=poll_interval)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {json_format.MessageToJson(self.get(execution_id))}") from None

    def run(
        self, document: Mapping[str, Any], input: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> execution_pb2.Execution:
        """Start a run of `document` and wait for it to finish."""
        return self.wait(self.start(document, input=input, **kwargs).id)


def to_struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


def nodes_by_id(execution: execution_pb2.Execution) -> dict[str, execution_pb2.NodeState]:
    """Top-level node states by id (loop iterations are left out)."""
    return {node.node_id: node for node in execution.nodes if not node.stack}


def node_status(execution: execution_pb2.Execution) -> dict[str, str]:
    return {
        node_id: common_pb2.NodeStatus.Name(node.status).removeprefix("NODE_STATUS_").lower()
        for node_id, node in nodes_by_id(execution).items()
    }


def node_reached(
    client: runctl.Client, execution_id: str, node_id: str, status: str = "completed"
) -> execution_pb2.Execution:
    """The run once its node `node_id` is in `status` (as node_status names it), polled with a deadline."""

    def reached() -> execution_pb2.Execution | None:
        execution = client.get(execution_id)
        return execution if node_status(execution).get(node_id) == status else None

    return wait_for(reached, what=f"node {node_id} of {execution_id} to be {status}")


def output(message: Any) -> Any:
    return json_format.MessageToDict(message)


def linear(*middle: dict[str, Any], name: str = "test") -> dict[str, Any]:
    """start -> middle... -> end."""
    nodes = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    ids = [node["id"] for node in nodes]
    return {
        "name": name,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)],
    }


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class LocalHttp:
    """A real HTTP server on loopback that records requests; routes answer by path prefix."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        # Requests whose answer has been written, in the order they were answered.
        self.answered: list[Recorded] = []
        self.failures: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = (
                    json.loads(raw)
                    if raw and "json" in (self.headers.get("content-type") or "")
                    else raw.decode()
                )
                recorded = Recorded(self.command, self.path, dict(self.headers), body)
                outer.requests.append(recorded)
                status, payload = outer.route(self.command, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                finally:
                    outer.answered.append(recorded)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path.startswith("/flaky/"):
            key = path.split("/")[2]
            remaining = self.failures.get(key, 0)
            if remaining > 0:
                self.failures[key] = remaining - 1
                return 503, {"error": "try again"}
            return 200, {"ok": True, "key": key}
        if path.startswith("/slow"):
            time.sleep(2)
            return 200, {"slow": True}
        if path.startswith("/missing"):
            return 404, {"error": "not here"}
        return 200, {"method": method, "path": path, "echo": body, "total": 150}


@contextmanager
def local_http() -> Iterator[LocalHttp]:
    server = LocalHttp()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


DATABASE_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def serving_client(kind: str, tmp_path_factory: pytest.TempPathFactory, **settings: Any) -> Iterator[Client]:
    """A real server on a fresh SQLite file or PostgreSQL database, reached through the shipped client."""
    with ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
        else:
            url = stack.enter_context(temporary_database())
        handle = stack.enter_context(running_server(settings_for(url, **settings)))
        yield stack.enter_context(Client(handle.grpc_target))
