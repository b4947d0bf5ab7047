"""Resume credentials on a server with API keys: signed resume links and webhook secret rotation.

A resume link (the paused executions API's apiUrl / uiUrl) carries a token that opens one pause point of one
run for whoever holds the link, without a key, until the pause point stops waiting. A workflow's webhook
secret (the node resume API) can be rotated with an overlap during which the replaced one still works.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import (
    common_pb2,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    pause_point_pb2,
    pause_point_pb2_grpc,
    workflow_pb2,
)
from runctl_server.settings import Settings, SettingsError
from tests.engine_helpers import Client, linear, output
from tests.support import (
    create_api_key,
    running_server,
    settings_for,
    spawn_server,
)
from tests.workspaces import Keyed, keyed_server

PAUSED = (common_pb2.EXECUTION_STATUS_PAUSED,)
APPROVAL = linear(
    {"id": "ask", "type": "approval", "config": {"title": "Ship it?", "formFields": [{"name": "note"}]}},
    name="ship",
)
TWO_QUESTIONS = {
    "name": "two questions",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "first", "type": "approval", "config": {"title": "First question"}},
        {"id": "second", "type": "approval", "config": {"title": "Second question"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "first"},
        {"from": "start", "to": "second"},
        {"from": "first", "to": "end"},
        {"from": "second", "to": "end"},
    ],
}
WAIT = linear({"id": "hold", "type": "wait"}, name="waits")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    with keyed_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def client(keyed: Keyed) -> Iterator[Client]:
    with Client(keyed.handle.grpc_target, api_key=keyed.alpha) as client:
        yield client


@pytest.fixture
def http(keyed: Keyed) -> Iterator[httpx.Client]:
    """A person's browser or script: no API key at all."""
    with httpx.Client(base_url=keyed.handle.http_url, timeout=10) as person:
        yield person


def local(url: str) -> str:
    """The path and query of a link (the test server's public address is not a real one)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def paused_points(client: Client, document: dict[str, Any]) -> tuple[str, list[pause_point_pb2.PausePoint]]:
    run = client.start(document).id
    execution = client.wait(run, until=PAUSED)
    return run, list(execution.pause_points)


def with_token(url: str, token: str) -> str:
    return url.partition("?")[0] + f"?token={token}"


def token_of(url: str) -> str:
    return url.partition("?token=")[2]


def refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 401, response.text
    assert words in response.text, response.text


# -- a link is its own credential ---------------------------------------------------------------------


def test_a_link_resumes_its_pause_point_without_a_key(client: Client, http: httpx.Client) -> None:
    run, [point] = paused_points(client, APPROVAL)
    api_url = local(point.resume_links.api_url)
    assert http.post(api_url.partition("?")[0], json={"note": "no token"}).status_code == 401

    first = http.post(api_url, json={"note": "ship"}, headers={"Idempotency-Key": "once"})
    assert first.status_code == 200, first.text
    assert first.json()["action"] == "resumed"
    # The answer holds a credential-bearing link: never cached, never passed on as a Referer.
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    # The same request again (a lost answer retried) gets the same answer and changes nothing.
    retry = http.post(api_url, json={"note": "ship"}, headers={"Idempotency-Key": "once"})
    assert (retry.status_code, retry.json()["action"]) == (200, "resumed")
    # Any other use of the spent link is refused.
    replay = http.post(api_url, json={"note": "again"})
    refused(replay, "already resumed")
    assert replay.json()["error"].startswith("this resume link can no longer be used")
    refused(http.get(local(point.resume_links.ui_url)), "already resumed")

    done = client.wait(run)
    assert done.status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert output(done.data)["nodes"]["ask"]["output"]["note"] == "ship"


def test_the_page_through_a_link(client: Client, http: httpx.Client) -> None:
    run, [point] = paused_points(client, APPROVAL)
    ui_url = local(point.resume_links.ui_url)
    page = http.get(ui_url)
    assert page.status_code == 200 and "Ship it?" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert '<meta name="referrer" content="no-referrer">' in page.text
    answered = http.post(
        ui_url,
        data={"runctl.contextId": point.context_id, "runctl.decision": "approve", "note": "from the page"},
    )
    assert answered.status_code == 200 and "Approved" in answered.text
    again = http.post(
        ui_url, data={"runctl.contextId": point.context_id, "runctl.decision": "reject", "note": "x"}
    )
    refused(again, "already resumed")
    assert output(client.wait(run).data)["nodes"]["ask"]["output"]["approved"] is True


def test_a_link_opens_its_own_pause_point_and_nothing_else(
    keyed: Keyed, client: Client, http: httpx.Client
) -> None:
    run, points = paused_points(client, TWO_QUESTIONS)
    first, second = sorted(points, key=lambda p: p.node_id)
    token = token_of(first.resume_links.api_url)
    # The other pause point of the same run: neither its apiUrl nor the page's form takes this token.
    other = with_token(local(second.resume_links.api_url), token)
    refused(http.post(other, json={}), "another run or pause point")
    ui_url = local(first.resume_links.ui_url)
    page = http.get(ui_url)
    assert page.status_code == 200
    assert "First question" in page.text and "Second question" not in page.text
    wrong_form = http.post(ui_url, data={"runctl.contextId": second.context_id, "runctl.decision": "approve"})
    assert wrong_form.status_code == 404
    # Nor any other route, with or without the run's own ids.
    for path in (
        f"/v1/executions/{run}?token={token}",
        f"/api/workflows/execution/{run}/events?token={token}",
        f"/api/workflows/executions/active?token={token}",
    ):
        assert http.get(path).status_code == 401, path
    assert client.get(run).status == common_pb2.EXECUTION_STATUS_PAUSED
    # And it still works for what it is for.
    assert http.post(local(first.resume_links.api_url), json={}).json()["action"] == "resumed"


def test_wrong_and_foreign_tokens_are_refused(keyed: Keyed, client: Client, http: httpx.Client) -> None:
    run_a, [point_a] = paused_points(client, APPROVAL)
    run_b, [point_b] = paused_points(client, APPROVAL)
    api_b, token_a = local(point_b.resume_links.api_url), token_of(point_a.resume_links.api_url)
    payload, _, signature = token_a.rpartition(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    for token, words in [
        ("", "not valid"),
        ("not-a-token", "not valid"),
        (tampered, "not valid"),
        (token_a, "another run or pause point"),  # run A's link on run B's path
    ]:
        refused(http.post(with_token(api_b, token), json={"note": "x"}), words)
        page = http.get(with_token(local(point_b.resume_links.ui_url), token))
        assert page.status_code == 401 and "text/html" in page.headers["content-type"]
    # A key of another workspace cannot use these runs' paths either (its own NOT_FOUND).
    bare = api_b.partition("?")[0]
    assert http.post(bare, json={}, headers={"x-api-key": keyed.beta}).status_code == 404
    # Nothing was resumed by any of it.
    for run in (run_a, run_b):
        assert client.get(run).status == common_pb2.EXECUTION_STATUS_PAUSED
    assert http.post(api_b, json={"note": "ok"}).json()["action"] == "resumed"


def test_a_link_signed_by_another_server_is_refused(
    tmp_path_factory: pytest.TempPathFactory, client: Client, http: httpx.Client
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('other') / 'runctl.db'}"
    with running_server(settings_for(url)) as other, Client(other.grpc_target) as other_client:
        # Same workspace name, run and pause point shape: only the signing key differs.
        _, [foreign] = paused_points(other_client, APPROVAL)
    _, [point] = paused_points(client, APPROVAL)
    forged = with_token(local(point.resume_links.api_url), token_of(foreign.resume_links.api_url))
    refused(http.post(forged, json={}), "not valid")


def test_a_link_expires_with_its_pause_point(client: Client, http: httpx.Client) -> None:
    run, [point] = paused_points(
        client,
        linear({"id": "hold", "type": "wait", "config": {"timeoutSeconds": 0.5, "onTimeout": "continue"}}),
    )
    assert client.wait(run).status == common_pb2.EXECUTION_STATUS_COMPLETED
    refused(http.post(local(point.resume_links.api_url), json={"late": True}), "expired")


def test_links_survive_a_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The signing key is in the database: links sent before a restart still open after it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('restart') / 'runctl.db'}"
    key = create_api_key(url, "alpha")
    with running_server(settings_for(url)) as first, Client(first.grpc_target, api_key=key) as client:
        _, [point] = paused_points(client, APPROVAL)
    with running_server(settings_for(url)) as second, httpx.Client(base_url=second.http_url) as http:
        answer = http.post(local(point.resume_links.api_url), json={"note": "after"}, timeout=10)
        assert (answer.status_code, answer.json()["action"]) == (200, "resumed")


# -- webhook secret rotation ----------------------------------------------------------------------------


def _resume_node(client: Client, run: str, secret: str) -> execution_pb2.ResumeNodeResponse:
    request = execution_pb2.ResumeNodeRequest(execution_id=run, node_id="hold", secret=secret)
    return client.executions.ResumeNode(request, timeout=10)


def _unauthenticated(client: Client, run: str, secret: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _resume_node(client, run, secret)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _rotate(
    client: Client, workflow_id: str, overlap: float | None
) -> workflow_pb2.RotateWebhookSecretResponse:
    request = workflow_pb2.RotateWebhookSecretRequest(workflow_id=workflow_id)
    if overlap is not None:
        request.overlap.FromNanoseconds(round(overlap * 1e9))
    return client.workflows.RotateWebhookSecret(request, timeout=10)


def _stored_run(client: Client, workflow_id: str) -> str:
    started = client.executions.StartExecution(
        execution_pb2.StartExecutionRequest(workflow_id=workflow_id), timeout=10
    ).execution.id
    client.wait(started, until=PAUSED)
    return str(started)


def test_a_rotated_out_secret_works_for_the_overlap_only(client: Client) -> None:
    created = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(WAIT)), timeout=10
    ).workflow
    old = created.webhook_secret
    rotated_after = time.time()
    rotated = _rotate(client, created.id, 1.5)
    rotated_before = time.time()
    new = rotated.workflow.webhook_secret
    assert new and new != old
    until = rotated.previous_secret_expire_time.ToNanoseconds() / 1e9
    # The overlap counts from the rotation, which happened while the call was under way (1 ms for
    # the timestamp's rounding).
    assert rotated_after + 1.5 - 0.001 <= until <= rotated_before + 1.5 + 0.001
    # Both work during the overlap.
    assert (
        _resume_node(client, _stored_run(client, created.id), old).action
        == execution_pb2.RESUME_ACTION_RESUMED
    )
    assert (
        _resume_node(client, _stored_run(client, created.id), new).action
        == execution_pb2.RESUME_ACTION_RESUMED
    )
    # After it, only the new one.
    run = _stored_run(client, created.id)
    # The server said when the old secret expires: wait for that instant (and a little), not a guess.
    time.sleep(max(0.0, until - time.time()) + 0.1)
    _unauthenticated(client, run, old)
    assert _resume_node(client, run, new).action == execution_pb2.RESUME_ACTION_RESUMED


def test_rotation_without_overlap_and_twice(client: Client) -> None:
    created = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(WAIT)), timeout=10
    ).workflow
    run = _stored_run(client, created.id)
    second = _rotate(client, created.id, None)  # the server's default overlap: 24 hours
    assert 86_000 < second.previous_secret_expire_time.ToNanoseconds() / 1e9 - time.time() <= 86_400
    third = _rotate(client, created.id, None)
    # Only the secret a rotation replaced lives on: the first is gone, the second still works.
    _unauthenticated(client, run, created.webhook_secret)
    assert (
        _resume_node(client, run, second.workflow.webhook_secret).action
        == execution_pb2.RESUME_ACTION_RESUMED
    )
    fourth = _rotate(client, created.id, 0)
    assert not fourth.HasField("previous_secret_expire_time")
    run = _stored_run(client, created.id)
    _unauthenticated(client, run, third.workflow.webhook_secret)
    assert (
        _resume_node(client, run, fourth.workflow.webhook_secret).action
        == execution_pb2.RESUME_ACTION_RESUMED
    )
    for bad in (-1.0, 31 * 86_400.0):
        with pytest.raises(grpc.RpcError) as caught:
            _rotate(client, created.id, bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "overlap" in str(caught.value.details())


def test_rotation_over_http(keyed: Keyed, client: Client) -> None:
    created = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(WAIT)), timeout=10
    ).workflow
    path = f"/v1/workflows/{created.id}/rotate-secret"
    with httpx.Client(base_url=keyed.handle.http_url, timeout=10) as http:
        alpha = {"x-api-key": keyed.alpha}
        answer = http.post(path, headers=alpha, json={"overlapSeconds": 0})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["id"] == created.id and body["previousSecretExpiresAt"] is None
        secret = body["webhookSecret"]
        kept = http.post(path, headers=alpha).json()  # no body: the default overlap
        assert kept["previousSecretExpiresAt"].endswith("Z")
        run = _stored_run(client, created.id)
        resumed = http.post(
            f"/v1/runs/{run}/nodes/hold/resume", params={"secret": secret}, json={"data": {}}, headers=alpha
        )
        assert resumed.json()["action"] == "resumed"
        for bad, field in [
            ({"overlapSeconds": -5}, "overlapSeconds"),
            ({"overlapSeconds": "1h"}, "overlapSeconds"),
            ({"overlapSeconds": 1e300}, "overlapSeconds"),
            ({"overlap": 5}, "overlap"),
        ]:
            refusal = http.post(path, headers=alpha, json=bad)
            assert refusal.status_code == 400, (bad, refusal.text)
            assert [d["field"] for d in refusal.json()["details"] if "field" in d] == [field]
        assert http.post(path, json={}).status_code == 401
        assert http.post(path, headers={"x-api-key": keyed.beta}, json={}).status_code == 404


def test_rotation_events_and_reads_never_hold_a_secret(keyed: Keyed, client: Client) -> None:
    created = client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(WAIT)), timeout=10
    ).workflow
    rotated = _rotate(client, created.id, 60)
    secrets = {created.webhook_secret, rotated.workflow.webhook_secret}
    run = _stored_run(client, created.id)
    _unauthenticated(client, run, created.webhook_secret + "x")
    assert _resume_node(client, run, created.webhook_secret).action == execution_pb2.RESUME_ACTION_RESUMED
    events = event_pb2_grpc.EventServiceStub(client.channel).ListEvents(
        event_pb2.ListEventsRequest(workflow_id=created.id, page_size=1000), timeout=10
    )
    kinds = [event_pb2.EventType.Name(e.type) for e in events.events]
    assert "EVENT_TYPE_WORKFLOW_SECRET_ROTATED" in kinds
    workflow = client.workflows.GetWorkflow(
        workflow_pb2.GetWorkflowRequest(workflow_id=created.id), timeout=10
    )
    listed = client.workflows.ListWorkflows(workflow_pb2.ListWorkflowsRequest(), timeout=10)
    points = pause_point_pb2_grpc.PausePointServiceStub(client.channel).ListPausePoints(
        pause_point_pb2.ListPausePointsRequest(execution_id=run), timeout=10
    )
    with httpx.Client(base_url=keyed.handle.http_url, timeout=10) as http:
        page = http.get(f"/v1/workflows/{created.id}", headers={"x-api-key": keyed.alpha}).text
        wrong = http.post(
            f"/v1/runs/{run}/nodes/hold/resume", params={"secret": "guess-" + created.webhook_secret}, json={}
        ).text
    seen = json.dumps([str(events), str(workflow), str(listed), str(points), page, wrong])
    for secret in secrets:
        assert secret not in seen


def test_a_served_process_logs_no_credential(tmp_path: Path) -> None:
    """`runctl serve` as people run it: its whole log, after every kind of credential went through
    it, right and wrong, over gRPC and HTTP, holds none of them."""
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    key = create_api_key(url, "alpha")
    served = spawn_server(url, tmp_path)
    try:
        with (
            Client(served.grpc_target, api_key=key) as client,
            httpx.Client(base_url=served.http_url, timeout=10) as http,
        ):
            created = client.workflows.CreateWorkflow(
                workflow_pb2.CreateWorkflowRequest(definition=as_definition(WAIT)), timeout=10
            ).workflow
            rotated = _rotate(client, created.id, 30).workflow.webhook_secret
            run = _stored_run(client, created.id)
            _unauthenticated(client, run, "wrong-" + rotated)
            wrong = http.post(
                f"/v1/runs/{run}/nodes/hold/resume",
                params={"secret": created.webhook_secret + "x"},
                json={},
                headers={"authorization": f"Bearer {key}"},
            )
            assert wrong.status_code == 401
            assert http.post(f"/v1/executions/{run}", headers={"x-api-key": key + "x"}).status_code == 401
            assert (
                _resume_node(client, run, created.webhook_secret).action
                == execution_pb2.RESUME_ACTION_RESUMED
            )
            _, [point] = paused_points(client, APPROVAL)
            token = token_of(point.resume_links.api_url)
            assert http.post(local(point.resume_links.api_url), json={"note": "ok"}).status_code == 200
            assert http.post(local(point.resume_links.api_url), json={"note": "again"}).status_code == 401
    finally:
        served.process.terminate()
        served.process.wait(timeout=20)
    log = served.log()
    assert "serving gRPC" in log  # the log was captured at all
    for credential in (created.webhook_secret, rotated, key, key.removeprefix("rk_"), token):
        assert credential not in log


def test_link_keys_from_the_environment_rotate(tmp_path_factory: pytest.TempPathFactory) -> None:
    """RUNCTL_RESUME_LINK_KEYS (oldest first) keeps the signing key out of the database: the last key
    signs, all verify; a link signed by a key that was dropped is refused."""
    old, new = "o" * 32, "n" * 32
    url = f"sqlite:///{tmp_path_factory.mktemp('keys') / 'runctl.db'}"
    key = create_api_key(url, "alpha")

    def serve(*keys: str) -> Any:
        return running_server(settings_for(url, resume_link_keys=keys))

    with serve(old) as first, Client(first.grpc_target, api_key=key) as client:
        _, [signed_old] = paused_points(client, APPROVAL)
        _, [kept] = paused_points(client, APPROVAL)
    with serve(old, new) as both, Client(both.grpc_target, api_key=key) as client:
        _, [signed_new] = paused_points(client, APPROVAL)
        assert token_of(signed_new.resume_links.api_url) != token_of(kept.resume_links.api_url)
        with httpx.Client(base_url=both.http_url, timeout=10) as http:
            answer = http.post(local(signed_old.resume_links.api_url), json={"note": "old key"})
            assert answer.json()["action"] == "resumed"  # the old key still verifies
    with serve(new) as last, httpx.Client(base_url=last.http_url, timeout=10) as http:
        refused(http.post(local(kept.resume_links.api_url), json={}), "not valid")  # its key was dropped
        assert http.post(local(signed_new.resume_links.api_url), json={}).json()["action"] == "resumed"


def test_link_keys_must_be_long_enough() -> None:
    with pytest.raises(SettingsError, match="at least 32 characters"):
        Settings.from_env({"RUNCTL_RESUME_LINK_KEYS": "short," + "x" * 32})
    settings = Settings.from_env({"RUNCTL_RESUME_LINK_KEYS": " " + "a" * 32 + " , " + "b" * 40})
    assert settings.resume_link_keys == ("a" * 32, "b" * 40)
