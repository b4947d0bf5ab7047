"""PausePointService over the real gRPC API: what is waiting, found and shown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from runctl.v1 import common_pb2, execution_pb2, pause_point_pb2, pause_point_pb2_grpc
from tests.engine_helpers import Client, linear, serving_client

PAUSED = common_pb2.EXECUTION_STATUS_PAUSED


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with serving_client("sqlite", tmp_path_factory, public_base_url="https://ops.example.test") as client:
        yield client


def test_find_and_show_what_is_waiting(client: Client) -> None:
    points = pause_point_pb2_grpc.PausePointServiceStub(client.channel)
    approval = {"id": "sign", "type": "approval", "config": {"title": "Sign off", "message": "Ship it?"}}
    approvals = [client.start(linear(approval)).id for _ in range(3)]
    waiting = client.start(linear({"id": "hold", "type": "wait"})).id
    for execution_id in [*approvals, waiting]:
        client.wait(execution_id, until=(PAUSED,))
    client.executions.ControlPause(
        execution_pb2.ControlPauseRequest(
            execution_id=approvals[0], action=execution_pb2.PAUSE_ACTION_CONTINUE
        ),
        timeout=10,
    )

    def listed(**where: Any) -> list[pause_point_pb2.PausePoint]:
        found: list[pause_point_pb2.PausePoint] = []
        token = ""
        while True:
            page = points.ListPausePoints(
                pause_point_pb2.ListPausePointsRequest(page_size=1, page_token=token, **where), timeout=10
            )
            found.extend(page.pause_points)
            token = page.next_page_token
            if not token:
                return found

    open_approvals = listed(
        reasons=[common_pb2.PAUSE_REASON_APPROVAL], resume_statuses=[pause_point_pb2.RESUME_STATUS_PAUSED]
    )
    assert {p.execution_id for p in open_approvals} == set(approvals[1:])
    times = [p.create_time.ToNanoseconds() for p in open_approvals]
    assert times == sorted(times, reverse=True)  # newest first
    (of_run,) = listed(execution_id=waiting)
    assert of_run.reason == common_pb2.PAUSE_REASON_WAIT
    shown = points.GetPausePoint(
        pause_point_pb2.GetPausePointRequest(context_id=open_approvals[0].context_id), timeout=10
    ).pause_point
    assert shown.response.display_data.title == "Sign off"
    assert shown.resume_links.ui_url.startswith("https://ops.example.test/resume/")
    with pytest.raises(grpc.RpcError) as missing:
        points.GetPausePoint(pause_point_pb2.GetPausePointRequest(context_id="ctx_missing"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as bad_token:
        points.ListPausePoints(pause_point_pb2.ListPausePointsRequest(page_token="nonsense"))
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_pause_point_shows_its_expiry_action_and_extra_display_values(client: Client) -> None:
    points = pause_point_pb2_grpc.PausePointServiceStub(client.channel)
    timed = {
        "id": "hold",
        "type": "wait",
        "config": {
            "timeoutSeconds": 3600,
            "onTimeout": "continue",
            "display": {"title": "Parcel", "message": "Scan it", "bay": 7},
        },
    }
    untimed = {"id": "sign", "type": "approval", "config": {"title": "Sign off"}}
    shown: dict[str, pause_point_pb2.PausePoint] = {}
    for node in (timed, untimed):
        execution_id = client.start(linear(node)).id
        client.wait(execution_id, until=(PAUSED,))
        (point,) = points.ListPausePoints(
            pause_point_pb2.ListPausePointsRequest(execution_id=execution_id), timeout=10
        ).pause_points
        shown[point.node_id] = point
    hold, sign = shown["hold"], shown["sign"]
    assert hold.HasField("expire_time")
    assert hold.expiry_action == pause_point_pb2.EXPIRY_ACTION_CONTINUE
    display = hold.response.display_data
    assert (display.title, display.message, dict(display.extra)) == ("Parcel", "Scan it", {"bay": 7})
    assert not sign.HasField("expire_time")
    assert sign.expiry_action == pause_point_pb2.EXPIRY_ACTION_UNSPECIFIED
    assert not sign.response.display_data.HasField("extra")


def test_only_pause_points_that_show_something_have_a_response(client: Client) -> None:
    points = pause_point_pb2_grpc.PausePointServiceStub(client.channel)
    plain_wait = client.start(linear({"id": "hold", "type": "wait"})).id
    halt = client.start(linear({"id": "halt", "type": "breakpoint"})).id
    for execution_id in (plain_wait, halt):
        client.wait(execution_id, until=(PAUSED,))
        (point,) = points.ListPausePoints(
            pause_point_pb2.ListPausePointsRequest(execution_id=execution_id), timeout=10
        ).pause_points
        assert not point.HasField("response"), point
