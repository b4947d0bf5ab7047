"""API keys and workspaces over both faces: who may call (no key, wrong, revoked, right), dev mode.

A server whose database holds keys for two workspaces (alpha, beta) and a revoked one; a second,
keyless server for dev mode; the `runctl keys` commands in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runctl.v1 import (
    common_pb2,
    event_pb2,
    execution_pb2,
)
from runctl_server.api.auth import grpc_peer_is_loopback, presented_key
from runctl_server.app import StartupError, build_server
from runctl_server.clock import ManualClock
from runctl_server.settings import Address
from runctl_server.store.api_keys import create_key, revoke_key
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from tests.engine_helpers import Client, linear
from tests.support import ServerThread, running_server, settings_for
from tests.workspaces import Keyed, keyed_server

PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
APPROVAL = linear({"id": "ask", "type": "approval", "config": {"title": "Ship it?"}}, name="approval")
QUICK = linear({"id": "say", "type": "transform", "config": {"output": 1}}, name="quick")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    with keyed_server(tmp_path_factory) as handle:
        yield handle


def _rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# -- who may call -------------------------------------------------------------------------------------


def test_grpc_needs_a_valid_key_when_keys_exist(keyed: Keyed) -> None:
    with Client(keyed.handle.grpc_target) as client:
        listing = execution_pb2.ListExecutionsRequest()
        for metadata in [(), (("x-api-key", "rk_wrong"),), (("x-api-key", keyed.revoked),)]:
            error = _rpc_error(
                lambda m=metadata: client.executions.ListExecutions(listing, metadata=m, timeout=10)
            )
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        error = _rpc_error(
            lambda: client.executions.ListExecutions(
                listing, metadata=(("authorization", "Basic abc"),), timeout=10
            )
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        client.executions.ListExecutions(listing, metadata=keyed.meta(keyed.alpha), timeout=10)
        client.executions.ListExecutions(
            listing, metadata=(("authorization", f"Bearer {keyed.beta}"),), timeout=10
        )
        # Streams are checked before they start, too.
        stream = client.events.StreamEvents(event_pb2.StreamEventsRequest(), timeout=10)
        assert _rpc_error(lambda: next(iter(stream))).code() == grpc.StatusCode.UNAUTHENTICATED
        # Health and reflection stay open.
        health = health_pb2_grpc.HealthStub(client.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(client.channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for s in next(iter(reflection)).list_services_response.service}
        assert "runctl.v1.ExecutionService" in names


def test_http_needs_a_valid_key_when_keys_exist(keyed: Keyed) -> None:
    with httpx.Client(base_url=keyed.handle.http_url, timeout=10) as http:
        for headers in [
            {},
            {"x-api-key": "rk_wrong"},
            {"x-api-key": keyed.revoked},
            {"authorization": "Bearer x"},
        ]:
            reply = http.get("/v1/executions", headers=headers)
            assert reply.status_code == 401, headers
            body = reply.json()
            assert body["error"] and body["details"] == [{"reason": "UNAUTHENTICATED"}]
            assert reply.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/v1/executions", headers={"x-api-key": keyed.alpha}).status_code == 200
        assert (
            http.get("/v1/executions", headers={"authorization": f"Bearer {keyed.beta}"}).status_code == 200
        )
        assert http.get("/healthz").status_code == 200
        assert http.get("/openapi.json").status_code == 200
        # The SSE stream and the approval page are behind the key as well.
        assert http.get("/api/workflows/execution/exec_x/events").status_code == 401
        assert http.get("/resume/wf/exec_x").status_code == 401


def _socketio_connect(http: httpx.Client, auth: dict[str, str] | None) -> str:
    """Open an Engine.IO polling session, send the Socket.IO CONNECT packet, answer the server's reply."""
    opened = http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    sid = json.loads(opened.text[1:])["sid"]
    packet = "40" + (json.dumps(auth) if auth else "")
    http.post("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content=packet)
    return http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}).text


def test_socketio_handshake_needs_a_valid_key(keyed: Keyed) -> None:
    with httpx.Client(base_url=keyed.handle.http_url, timeout=10) as http:
        assert _socketio_connect(http, None).startswith("44")  # CONNECT_ERROR
        assert _socketio_connect(http, {"apiKey": keyed.revoked}).startswith("44")
        assert _socketio_connect(http, {"apiKey": keyed.alpha}).startswith("40{")
        assert _socketio_connect(http, {"token": keyed.beta}).startswith("40{")


def test_revoking_a_key_takes_effect_within_a_second(keyed: Keyed) -> None:
    database = create_db_engine(keyed.db_url)
    try:
        created = create_key(database, "alpha", "short-lived")
        listing = execution_pb2.ListExecutionsRequest()
        with Client(keyed.handle.grpc_target) as client:
            deadline = time.monotonic() + 3
            while True:  # a new key is picked up within the snapshot's second too
                try:
                    client.executions.ListExecutions(listing, metadata=keyed.meta(created.key), timeout=10)
                    break
                except grpc.RpcError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            revoke_key(database, created.info.id)
            revoked_at = time.monotonic()
            while True:
                try:
                    client.executions.ListExecutions(listing, metadata=keyed.meta(created.key), timeout=10)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                    break
                assert time.monotonic() - revoked_at < 1.5
                time.sleep(0.05)
    finally:
        database.dispose()


# What each workspace sees, RPC by RPC and route by route: tests/test_workspace_isolation.py.


# -- dev mode -----------------------------------------------------------------------------------------


def test_dev_mode_serves_loopback_without_a_key(server: ServerThread) -> None:
    with Client(server.grpc_target) as client:
        client.executions.ListExecutions(execution_pb2.ListExecutionsRequest(), timeout=10)
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        assert http.get("/v1/executions").status_code == 200


async def test_dev_mode_refuses_to_start_on_a_public_address(sqlite_url: str) -> None:
    loopback = settings_for(sqlite_url)
    public = Address("0.0.0.0", 0)
    for settings in [replace(loopback, grpc_addr=public), replace(loopback, http_addr=public)]:
        server = build_server(settings)
        with pytest.raises(StartupError, match=r"no API keys: dev mode, loopback only.*0\.0\.0\.0"):
            await server.start()
        assert server.grpc_port == 0 and server.http_port == 0  # nothing was bound


async def test_with_a_key_a_public_address_starts(sqlite_url: str) -> None:
    database = create_db_engine(sqlite_url)
    upgrade_to_head(database)
    create_key(database, "ops")
    database.dispose()
    server = build_server(replace(settings_for(sqlite_url), http_addr=Address("0.0.0.0", 0)))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            assert (await http.get("/v1/executions")).status_code == 401  # loopback needs the key too
    finally:
        await server.stop(grace=1)


async def test_dev_mode_admits_loopback_peers_only(sqlite_url: str) -> None:
    from runctl_server.api.auth import Authenticator
    from runctl_server.errors import Unauthenticated

    database = create_db_engine(sqlite_url)
    upgrade_to_head(database)
    try:
        auth = Authenticator(database)
        assert await auth.authenticate([("x-api-key", "anything")], loopback=True) == "default"
        with pytest.raises(Unauthenticated, match="loopback only"):
            await auth.authenticate([], loopback=False)
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv4:127.8.9.1:5000", True),
        ("ipv6:[::1]:5000", True),
        ("ipv6:[::ffff:10.0.0.1]:5000", False),
        ("ipv4:10.1.2.3:5000", False),
        ("ipv6:[2001:db8::1]:443", False),
        ("unix:/tmp/runctl.sock", True),
        ("http", False),
    ],
)
def test_grpc_peers(peer: str, loopback: bool) -> None:
    assert grpc_peer_is_loopback(peer) is loopback


def test_presented_key_forms() -> None:
    assert presented_key([("x-api-key", " rk_a ")]) == "rk_a"
    assert presented_key([("authorization", "bearer rk_b")]) == "rk_b"
    assert presented_key([("authorization", "Basic rk_b")]) is None
    assert presented_key([("authorization", "Bearer rk_b"), ("x-api-key", "rk_a")]) == "rk_a"
    assert presented_key([]) is None


# -- the CLI ------------------------------------------------------------------------------------------


def _runctl(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("runctl", path=os.path.dirname(sys.executable)) or "runctl"
    env = {**os.environ, "RUNCTL_DB_URL": db_url, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([command, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def test_cli_keys_create_list_revoke(sqlite_url: str) -> None:
    created = _runctl("keys", "create", "--workspace", "acme", "--name", "ci", db_url=sqlite_url)
    assert created.returncode == 0, created.stderr
    key = next(line for line in created.stdout.splitlines() if line.startswith("rk_"))
    assert "will not be shown again" in created.stderr
    listed = _runctl("keys", "list", "--json", db_url=sqlite_url)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["workspace"] == "acme" and row["name"] == "ci" and row["revokedAt"] is None
    assert key.startswith(row["prefix"]) and key not in listed.stdout
    table = _runctl("keys", "list", db_url=sqlite_url)
    assert row["id"] in table.stdout and key not in table.stdout
    # The key works against a server on that database, and no longer once revoked.
    clock = ManualClock()
    with (
        running_server(settings_for(sqlite_url), clock=clock) as handle,
        httpx.Client(base_url=handle.http_url) as http,
    ):
        assert http.get("/v1/executions", headers={"x-api-key": key}).status_code == 200
        revoked = _runctl("keys", "revoke", row["id"], db_url=sqlite_url)
        assert revoked.returncode == 0, revoked.stderr
        clock.advance(1.0)  # the key snapshot's period: the next call reads the keys again
        assert http.get("/v1/executions", headers={"x-api-key": key}).status_code == 401
    (row,) = json.loads(_runctl("keys", "list", "--json", db_url=sqlite_url).stdout)
    assert row["revokedAt"]
    missing = _runctl("keys", "revoke", "key_nope", db_url=sqlite_url)
    assert missing.returncode == 1 and "key_nope" in missing.stderr
