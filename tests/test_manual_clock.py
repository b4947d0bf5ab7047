"""A server on a ManualClock: its timers and its API-key snapshot go by time the test moves, so what
would take an hour (or a refresh period) takes no waiting at all."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from runctl.v1 import common_pb2
from runctl_server.clock import ManualClock
from runctl_server.store.api_keys import create_key, revoke_key
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from tests.engine_helpers import Client, linear, node_reached
from tests.observability import Scrape
from tests.support import running_server, settings_for

HOUR = 3600.0


def test_an_hour_long_delay_ends_when_the_clock_is_moved_an_hour(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = settings_for(f"sqlite:///{tmp_path / 'runctl.db'}")
    with running_server(settings, clock=clock) as handle, Client(handle.grpc_target) as client:
        run = client.start(
            linear(
                {"id": "nap", "type": "delay", "config": {"seconds": HOUR}},
                {"id": "after", "type": "log", "config": {"message": "awake"}},
            )
        ).id
        waiting = node_reached(client, run, "nap", status="waiting")
        assert waiting.status == common_pb2.EXECUTION_STATUS_RUNNING
        clock.advance(HOUR / 2)
        assert client.get(run).status == common_pb2.EXECUTION_STATUS_RUNNING
        # The delay took its wake time from the same clock, however long the server took to start; a
        # millisecond more covers the wake time's rounding to the microsecond.
        clock.advance(HOUR / 2 + 0.001)
        done = client.wait(run)
        assert done.status == common_pb2.EXECUTION_STATUS_COMPLETED


def test_the_due_timer_gauge_goes_by_the_servers_clock(tmp_path: Path) -> None:
    # The server's clock stands an hour behind the wall's: a minute's delay is due by the wall's clock
    # from the start, by the server's (the one its timers fire by) only once the test moves it.
    clock = ManualClock(start=time.time() - HOUR)
    settings = settings_for(f"sqlite:///{tmp_path / 'runctl.db'}")
    with running_server(settings, clock=clock) as handle, Client(handle.grpc_target) as client:
        run = client.start(
            linear(
                {"id": "nap", "type": "delay", "config": {"seconds": 60}},
                {"id": "after", "type": "log", "config": {"message": "awake"}},
            )
        ).id
        node_reached(client, run, "nap", status="waiting")
        assert Scrape(handle.http_url).value("runctl_due_timers") == 0
        clock.advance(60.001)
        assert client.wait(run).status == common_pb2.EXECUTION_STATUS_COMPLETED
        assert Scrape(handle.http_url).value("runctl_due_timers") == 0


def test_a_revoked_key_is_refused_once_the_snapshot_is_a_period_old(tmp_path: Path) -> None:
    clock = ManualClock()
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    database = create_db_engine(url)
    try:
        upgrade_to_head(database)
        created = create_key(database, "acme", "ci")
        with (
            running_server(settings_for(url), clock=clock) as handle,
            httpx.Client(base_url=handle.http_url, timeout=10) as http,
        ):
            key = {"x-api-key": created.key}
            assert http.get("/v1/executions", headers=key).status_code == 200
            revoke_key(database, created.info.id)
            # Within the snapshot's period the server answers from the keys it has...
            assert http.get("/v1/executions", headers=key).status_code == 200
            clock.advance(1.0)
            # ... and once it is a period old, from the database again.
            assert http.get("/v1/executions", headers=key).status_code == 401
    finally:
        database.dispose()
