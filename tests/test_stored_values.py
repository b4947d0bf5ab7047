"""No stored value can break a later read: times beyond what a Timestamp holds are shown clamped, and
migration 0009 brings documents and times the older rules let in (a wait with `timeoutSeconds: 1e308`)
within today's bounds, so every read of the run and of the workspace goes on answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from google.protobuf import json_format
from sqlalchemy import create_engine, text

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, pause_point_pb2, pause_point_pb2_grpc, workflow_pb2
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import alembic_config
from tests.engine_helpers import Client, linear
from tests.support import running_server, settings_for

PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
TEN_YEARS = 10 * 366 * 24 * 3600.0
LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z


def every_read_answers(client: Client, run_ids: list[str]) -> None:
    """The reads that once answered INTERNAL for the whole workspace."""
    for run_id in run_ids:
        full = client.executions.GetExecution(
            execution_pb2.GetExecutionRequest(execution_id=run_id, view=execution_pb2.EXECUTION_VIEW_FULL),
            timeout=10,
        ).execution
        assert full.status == PAUSED
        watch = client.executions.WatchExecution(
            execution_pb2.WatchExecutionRequest(execution_id=run_id), timeout=10
        )
        assert next(watch).snapshot.id == run_id
        watch.cancel()
    listed = client.executions.ListExecutions(
        execution_pb2.ListExecutionsRequest(view=execution_pb2.EXECUTION_VIEW_FULL), timeout=10
    )
    assert {e.id for e in listed.executions} >= set(run_ids)
    points = pause_point_pb2_grpc.PausePointServiceStub(client.channel).ListPausePoints(
        pause_point_pb2.ListPausePointsRequest(), timeout=10
    )
    assert {p.execution_id for p in points.pause_points} >= set(run_ids)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'runctl.db'}"


def start_paused_runs(url: str) -> list[str]:
    """A run of a stored workflow and an inline run, each waiting with a 100 s timeout."""
    waiting = linear({"id": "hold", "type": "wait", "config": {"timeoutSeconds": 100}})
    with running_server(settings_for(url)) as handle, Client(handle.grpc_target) as client:
        workflow = client.workflows.CreateWorkflow(
            workflow_pb2.CreateWorkflowRequest(definition=as_definition(waiting)), timeout=10
        ).workflow
        runs = [
            client.executions.StartExecution(
                execution_pb2.StartExecutionRequest(workflow_id=workflow.id), timeout=10
            ).execution.id,
            client.start(waiting).id,
        ]
        for run in runs:
            client.wait(run, until=(PAUSED,))
        return runs


def poison(url: str, *, documents: bool) -> None:
    """What the older rules let in: times past year 9999, and (with `documents`) the 1e308 timeout."""
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE node_states SET wake_at = 1e308 WHERE wake_at IS NOT NULL"))
            connection.execute(text("UPDATE pause_points SET expires_at = 1e308"))
            if documents:
                for table in ("workflow_versions", "executions"):
                    connection.execute(
                        text(
                            f"UPDATE {table} SET document = replace(document, :old, :new)"
                            " WHERE document IS NOT NULL"
                        ),
                        {"old": '"timeoutSeconds":100', "new": '"timeoutSeconds":1e308'},
                    )
    finally:
        engine.dispose()
    if documents:
        # An older database: the schema as 0008 left it, so 0009 and later run again. Without runctl's
        # connection settings: SQLite rebuilds a table to drop a column, and with foreign keys enforced
        # dropping the old executions table would take every pause point and node with it.
        plain = create_engine(url)
        try:
            with plain.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.downgrade(config, "0008")
        finally:
            plain.dispose()


def stored(url: str) -> dict[str, list[object]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            documents = [
                json.loads(row[0])
                for table in ("workflow_versions", "executions")
                for row in connection.execute(
                    text(f"SELECT document FROM {table} WHERE document IS NOT NULL")
                )
            ]
            return {
                "timeouts": [
                    n["config"]["timeoutSeconds"] for d in documents for n in d["nodes"] if n["id"] == "hold"
                ],
                "wake_at": [
                    r[0]
                    for r in connection.execute(
                        text("SELECT wake_at FROM node_states WHERE wake_at IS NOT NULL")
                    )
                ],
                "expires_at": [r[0] for r in connection.execute(text("SELECT expires_at FROM pause_points"))],
            }
    finally:
        engine.dispose()


def test_times_beyond_a_timestamp_are_shown_clamped(database: str) -> None:
    runs = start_paused_runs(database)
    poison(database, documents=False)
    with (
        running_server(settings_for(database)) as handle,
        Client(handle.grpc_target) as client,
    ):
        every_read_answers(client, runs)
        (point,) = client.get(runs[0]).pause_points
        assert point.expire_time.seconds == LATEST


def test_the_migration_brings_old_values_within_bounds(database: str) -> None:
    runs = start_paused_runs(database)
    poison(database, documents=True)
    assert stored(database)["timeouts"] == [1e308, 1e308]
    with (
        running_server(settings_for(database)) as handle,
        Client(handle.grpc_target) as client,
    ):
        every_read_answers(client, runs)
    after = stored(database)
    assert after["timeouts"] == [TEN_YEARS, TEN_YEARS]
    for value in [*after["wake_at"], *after["expires_at"]]:
        assert isinstance(value, float) and value < LATEST


def test_numbers_json_cannot_carry_that_a_node_computes_are_stored_as_null(database: str) -> None:
    """`to_number('NaN')` and `to_number('1e999')` give NaN and infinity, which JSON has no numbers for:
    they are stored as null, so the run reads back over gRPC's JSON mapping and over HTTP. (Stored as
    `NaN`, the run's every read over JSON failed.)"""
    odd = {"nan": "{{ to_number('NaN') }}", "inf": "{{ to_number('1e999') }}", "fine": 1.5}
    with running_server(settings_for(database)) as handle, Client(handle.grpc_target) as client:
        run = client.start(linear({"id": "odd", "type": "transform", "config": {"output": odd}})).id
        done = client.wait(run)
        assert done.status == common_pb2.EXECUTION_STATUS_COMPLETED
        read = client.executions.GetExecution(
            execution_pb2.GetExecutionRequest(execution_id=run, view=execution_pb2.EXECUTION_VIEW_FULL),
            timeout=10,
        ).execution
        (node,) = [n for n in read.nodes if n.node_id == "odd"]
        assert json_format.MessageToDict(node.output) == {"nan": None, "inf": None, "fine": 1.5}
        assert json.loads(json_format.MessageToJson(read))["id"] == run
        reply = httpx.get(f"{handle.http_url}/v1/executions/{run}", timeout=10)
        assert reply.status_code == 200, reply.text
