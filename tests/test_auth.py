"""API keys and workspaces over both faces: who may call, and what each workspace can see.

A server whose database holds keys for two workspaces (alpha, beta) and a revoked one; a second,
keyless server for dev mode; the `runctl keys` commands in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runctl.v1 import (
    batch_pb2,
    batch_pb2_grpc,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    pause_point_pb2,
    pause_point_pb2_grpc,
    workflow_pb2,
)
from runctl_server.api.auth import grpc_peer_is_loopback, presented_key
from runctl_server.app import StartupError, build_server
from runctl_server.settings import Address
from runctl_server.store.api_keys import create_key, revoke_key
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from tests.engine_helpers import Client, linear
from tests.support import ServerThread, running_server, settings_for

PAUSED = execution_pb2.EXECUTION_STATUS_PAUSED
APPROVAL = linear({"id": "ask", "type": "approval", "config": {"title": "Ship it?"}}, name="approval")
QUICK = linear({"id": "say", "type": "transform", "config": {"output": 1}}, name="quick")


@dataclass
class Keyed:
    handle: ServerThread
    db_url: str
    alpha: str
    beta: str
    revoked: str

    def meta(self, key: str) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", key),)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    database = create_db_engine(url)
    upgrade_to_head(database)
    alpha = create_key(database, "alpha", "a").key
    beta = create_key(database, "beta", "b").key
    revoked = create_key(database, "alpha", "old")
    revoke_key(database, revoked.info.id)
    database.dispose()
    with running_server(settings_for(url)) as handle:
        yield Keyed(handle, url, alpha, beta, revoked.key)


def _rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# -- who may call -------------------------------------------------------------------------------------


def test_grpc_needs_a_valid_key_when_keys_exist(keyed: Keyed) -> None:
    with grpc.insecure_channel(keyed.handle.grpc_target) as channel:
        client = Client(channel)
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
        stream = event_pb2_grpc.EventServiceStub(channel).StreamEvents(
            event_pb2.StreamEventsRequest(), timeout=10
        )
        assert _rpc_error(lambda: next(iter(stream))).code() == grpc.StatusCode.UNAUTHENTICATED
        # Health and reflection stay open.
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
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
        with grpc.insecure_channel(keyed.handle.grpc_target) as channel:
            client = Client(channel)
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


# -- what each workspace sees -------------------------------------------------------------------------


@dataclass
class AlphaThings:
    workflow_id: str
    execution_id: str
    context_id: str
    batch_id: str


@pytest.fixture(scope="module")
def alpha_things(keyed: Keyed) -> Iterator[AlphaThings]:
    with grpc.insecure_channel(keyed.handle.grpc_target) as channel:
        client = Client(channel)
        meta = keyed.meta(keyed.alpha)
        workflow = client.workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=client.definition(APPROVAL)),
            metadata=meta,
            timeout=10,
        ).workflow
        started = client.executions.StartExecution(
            execution_pb2.StartExecutionRequest(definition=client.definition(APPROVAL)),
            metadata=meta,
            timeout=10,
        ).execution
        deadline = time.monotonic() + 20
        while True:
            execution = client.executions.GetExecution(
                execution_pb2.GetExecutionRequest(execution_id=started.id), metadata=meta, timeout=10
            ).execution
            if execution.status == PAUSED:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        points = pause_point_pb2_grpc.PausePointServiceStub(channel).ListPausePoints(
            pause_point_pb2.ListPausePointsRequest(execution_id=started.id), metadata=meta, timeout=10
        )
        batch = (
            batch_pb2_grpc.BatchServiceStub(channel)
            .StartBatch(
                batch_pb2.StartBatchRequest(workflow_ids=batch_pb2.WorkflowIdList(ids=[workflow.id])),
                metadata=meta,
                timeout=20,
            )
            .batch
        )
        yield AlphaThings(workflow.id, started.id, points.pause_points[0].context_id, batch.batch_id)


def first(method: Any) -> Any:
    """A server-streaming method as a call answering its first message."""
    return lambda request, **kwargs: next(iter(method(request, **kwargs)))


def _not_found_alike(method: Any, request: Any, metadata: Any, foreign_id: str, missing_id: str) -> None:
    """Beta asking for alpha's id gets exactly what asking for an id that never existed gets."""
    foreign = _rpc_error(lambda: method(request(foreign_id), metadata=metadata, timeout=10))
    missing = _rpc_error(lambda: method(request(missing_id), metadata=metadata, timeout=10))
    assert foreign.code() == missing.code() == grpc.StatusCode.NOT_FOUND
    assert str(foreign.details()).replace(foreign_id, "ID") == str(missing.details()).replace(
        missing_id, "ID"
    )


def test_another_workspace_finds_nothing_over_grpc(keyed: Keyed, alpha_things: AlphaThings) -> None:
    beta = keyed.meta(keyed.beta)
    things = alpha_things
    with grpc.insecure_channel(keyed.handle.grpc_target) as channel:
        client = Client(channel)
        batches = batch_pb2_grpc.BatchServiceStub(channel)
        points = pause_point_pb2_grpc.PausePointServiceStub(channel)
        E, W, B, P = execution_pb2, workflow_pb2, batch_pb2, pause_point_pb2
        ex, wf = client.executions, client.workflows
        again = client.definition(APPROVAL)
        run, flow, batch, ctx = things.execution_id, things.workflow_id, things.batch_id, things.context_id
        calls: list[tuple[Any, Any, str, str]] = [
            (ex.GetExecution, lambda i: E.GetExecutionRequest(execution_id=i), run, "exec_nope"),
            (ex.GetExecutionStatus, lambda i: E.GetExecutionStatusRequest(execution_id=i), run, "exec_nope"),
            (ex.StopExecution, lambda i: E.StopExecutionRequest(execution_id=i), run, "exec_nope"),
            (
                ex.GetExecutionHistory,
                lambda i: E.GetExecutionHistoryRequest(execution_id=i),
                run,
                "exec_nope",
            ),
            (wf.GetWorkflow, lambda i: W.GetWorkflowRequest(workflow_id=i), flow, "wf_nope"),
            (wf.PauseWorkflow, lambda i: W.PauseWorkflowRequest(workflow_id=i), flow, "wf_nope"),
            (wf.DeleteWorkflow, lambda i: W.DeleteWorkflowRequest(workflow_id=i), flow, "wf_nope"),
            (batches.GetBatch, lambda i: B.GetBatchRequest(batch_id=i), batch, "batch_nope"),
            (batches.StopBatch, lambda i: B.StopBatchRequest(batch_id=i), batch, "batch_nope"),
            (points.GetPausePoint, lambda i: P.GetPausePointRequest(context_id=i), ctx, "ctx_nope"),
            (ex.ResumePausePoint, lambda i: E.ResumePausePointRequest(context_id=i), ctx, "ctx_nope"),
            (ex.ContinueExecution, lambda i: E.ContinueExecutionRequest(execution_id=i), run, "exec_nope"),
            (
                ex.ControlPause,
                lambda i: E.ControlPauseRequest(execution_id=i, action=E.PAUSE_ACTION_CONTINUE),
                run,
                "exec_nope",
            ),
            (
                ex.SetTraceLogs,
                lambda i: E.SetTraceLogsRequest(execution_id=i, enabled=True),
                run,
                "exec_nope",
            ),
            (ex.PauseExecution, lambda i: E.PauseExecutionRequest(execution_id=i), run, "exec_nope"),
            (ex.ResumeExecution, lambda i: E.ResumeExecutionRequest(execution_id=i), run, "exec_nope"),
            (
                ex.ResumeNode,
                lambda i: E.ResumeNodeRequest(execution_id=i, node_id="ask", secret="s"),
                run,
                "exec_gone",
            ),
            (
                wf.UpdateWorkflow,
                lambda i: W.UpdateWorkflowRequest(workflow_id=i, definition=again),
                flow,
                "wf_gone",
            ),
            (wf.ResumeWorkflow, lambda i: W.ResumeWorkflowRequest(workflow_id=i), flow, "wf_nope"),
            (wf.RotateWebhookSecret, lambda i: W.RotateWebhookSecretRequest(workflow_id=i), flow, "wf_nope"),
            (
                wf.ListPausedExecutions,
                lambda i: W.ListPausedExecutionsRequest(workflow_id=i),
                flow,
                "wf_nope",
            ),
            (wf.CancelWorkflow, lambda i: W.CancelWorkflowRequest(workflow_id=i), flow, "wf_nope"),
            (first(ex.WatchExecution), lambda i: E.WatchExecutionRequest(execution_id=i), run, "exec_nope"),
            (first(batches.WatchBatch), lambda i: B.WatchBatchRequest(batch_id=i), batch, "batch_nope"),
        ]
        for method, request, foreign_id, missing_id in calls:
            _not_found_alike(method, request, beta, foreign_id, missing_id)
        events = event_pb2_grpc.EventServiceStub(channel)
        for by_foreign in [
            event_pb2.ListEventsRequest(execution_id=run),
            event_pb2.ListEventsRequest(workflow_id=flow),
            event_pb2.ListEventsRequest(batch_id=batch),
        ]:
            assert not events.ListEvents(by_foreign, metadata=beta, timeout=10).events, by_foreign
        # Lists of beta hold nothing of alpha's.
        listed = client.executions.ListExecutions(E.ListExecutionsRequest(), metadata=beta, timeout=10)
        assert things.execution_id not in {e.id for e in listed.executions}
        assert not client.workflows.ListWorkflows(
            W.ListWorkflowsRequest(), metadata=beta, timeout=10
        ).workflows
        assert not batches.ListBatches(B.ListBatchesRequest(), metadata=beta, timeout=10).batches
        assert not points.ListPausePoints(P.ListPausePointsRequest(), metadata=beta, timeout=10).pause_points
        # And alpha still sees all of it, untouched by beta's attempts.
        alpha = keyed.meta(keyed.alpha)
        execution = client.executions.GetExecution(
            E.GetExecutionRequest(execution_id=things.execution_id), metadata=alpha, timeout=10
        ).execution
        assert execution.status == PAUSED
        client.workflows.GetWorkflow(W.GetWorkflowRequest(workflow_id=things.workflow_id), metadata=alpha)
        points.GetPausePoint(P.GetPausePointRequest(context_id=things.context_id), metadata=alpha)
        batches.GetBatch(B.GetBatchRequest(batch_id=things.batch_id), metadata=alpha)


def test_another_workspace_finds_nothing_over_http(keyed: Keyed, alpha_things: AlphaThings) -> None:
    things = alpha_things
    beta, alpha = {"x-api-key": keyed.beta}, {"x-api-key": keyed.alpha}
    with httpx.Client(base_url=keyed.handle.http_url, timeout=10) as http:
        requests = [
            ("GET", "/v1/executions/{}", things.execution_id, "exec_nope"),
            ("GET", "/api/workflows/execution/{}/events", things.execution_id, "exec_nope"),
            ("POST", "/v1/workflows/{}/pause", things.workflow_id, "wf_nope"),
            ("GET", "/api/workflows/execution/batch/{}", things.batch_id, "batch_nope"),
            (
                "POST",
                f"/api/resume/{things.workflow_id}/{things.execution_id}/{{}}",
                things.context_id,
                "ctx_nope",
            ),
        ]
        for method, path, foreign_id, missing_id in requests:
            foreign = http.request(method, path.format(foreign_id), headers=beta, json={})
            missing = http.request(method, path.format(missing_id), headers=beta, json={})
            assert foreign.status_code == missing.status_code == 404, (path, foreign.text)
            assert foreign.text.replace(foreign_id, "ID") == missing.text.replace(missing_id, "ID")
        assert http.get(f"/v1/executions/{things.execution_id}", headers=alpha).status_code == 200
        assert http.get(f"/api/workflows/execution/batch/{things.batch_id}", headers=alpha).status_code == 200


def test_stream_events_of_one_workspace_never_reach_another(keyed: Keyed, alpha_things: AlphaThings) -> None:
    with grpc.insecure_channel(keyed.handle.grpc_target) as channel:
        client = Client(channel)
        beta = keyed.meta(keyed.beta)
        stream = event_pb2_grpc.EventServiceStub(channel).StreamEvents(
            event_pb2.StreamEventsRequest(
                after_sequence=0, heartbeat_interval=duration_pb2.Duration(seconds=1)
            ),
            metadata=beta,
            timeout=30,
        )
        seen: list[event_pb2.Event] = []
        beta_run: list[str] = []

        def start_runs() -> None:
            time.sleep(0.3)
            meta = keyed.meta(keyed.alpha)
            client.executions.StartExecution(
                execution_pb2.StartExecutionRequest(definition=client.definition(QUICK)),
                metadata=meta,
                timeout=10,
            )  # alpha keeps logging events while beta watches
            beta_run.append(
                client.executions.StartExecution(
                    execution_pb2.StartExecutionRequest(definition=client.definition(QUICK)),
                    metadata=beta,
                    timeout=10,
                ).execution.id
            )

        starter = threading.Thread(target=start_runs)
        starter.start()
        try:
            for message in stream:
                seen.extend(message.events.events)
                if beta_run and any(
                    e.execution_id == beta_run[0] and e.type == event_pb2.EVENT_TYPE_EXECUTION_COMPLETED
                    for e in seen
                ):
                    break
        finally:
            stream.cancel()
            starter.join(10)
        executions = {e.execution_id for e in seen if e.execution_id}
        assert executions == {beta_run[0]}
        assert alpha_things.execution_id not in executions


# -- dev mode -----------------------------------------------------------------------------------------


def test_dev_mode_serves_loopback_without_a_key(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        Client(channel).executions.ListExecutions(execution_pb2.ListExecutionsRequest(), timeout=10)
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
    with running_server(settings_for(sqlite_url)) as handle, httpx.Client(base_url=handle.http_url) as http:
        assert http.get("/v1/executions", headers={"x-api-key": key}).status_code == 200
        revoked = _runctl("keys", "revoke", row["id"], db_url=sqlite_url)
        assert revoked.returncode == 0, revoked.stderr
        time.sleep(1.2)
        assert http.get("/v1/executions", headers={"x-api-key": key}).status_code == 401
    (row,) = json.loads(_runctl("keys", "list", "--json", db_url=sqlite_url).stdout)
    assert row["revokedAt"]
    missing = _runctl("keys", "revoke", "key_nope", db_url=sqlite_url)
    assert missing.returncode == 1 and "key_nope" in missing.stderr
