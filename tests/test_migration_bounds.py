"""Migration 0009 (bounded times) brings stored values within the bounds, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from alembic import command
from sqlalchemy import insert, select

from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import alembic_config, upgrade_to_head
from runctl_server.store.tables import executions, node_states, pause_points, workflow_versions, workflows

TEN_YEARS = 10 * 366 * 24 * 3600.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def _document(timeout: float) -> str:
    return json.dumps(
        {"name": "w", "nodes": [{"id": "a", "type": "wait", "config": {"timeoutSeconds": timeout}}]}
    )


def timeout(document: str) -> float:
    return float(json.loads(document)["nodes"][0]["config"]["timeoutSeconds"])


def test_times_beyond_the_bounds_are_clamped(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0008")
        far = time.time() + 1000 * TEN_YEARS
        with engine.begin() as connection:
            connection.execute(
                insert(workflows).values(
                    id="wf1",
                    workspace_id="default",
                    name="w",
                    description="",
                    status="active",
                    version=2,
                    secret_hash="h",
                    created_at=1.0,
                    updated_at=1.0,
                )
            )
            connection.execute(
                insert(workflow_versions),
                [
                    {"workflow_id": "wf1", "version": 1, "document": _document(1e12), "created_at": 1.0},
                    {"workflow_id": "wf1", "version": 2, "document": _document(60), "created_at": 1.0},
                ],
            )
            connection.execute(
                insert(executions).values(
                    id="ex1",
                    workspace_id="default",
                    name="w",
                    status="running",
                    input="{}",
                    trace_logs=False,
                    breakpoints_disabled=False,
                    created_at=1.0,
                    updated_at=1.0,
                    document=_document(1e12),
                )
            )
            connection.execute(
                insert(node_states),
                [
                    {
                        "execution_id": "ex1",
                        "node_key": key,
                        "node_id": key,
                        "node_type": "wait",
                        "status": "running",
                        "attempts": 1,
                        "wake_at": wake_at,
                    }
                    for key, wake_at in (("a", far), ("b", -5.0), ("c", 100.0))
                ],
            )
            connection.execute(
                insert(pause_points).values(
                    context_id="c1",
                    workspace_id="default",
                    execution_id="ex1",
                    node_key="a",
                    node_id="a",
                    kind="wait",
                    status="paused",
                    registered_at=1.0,
                    expires_at=far,
                )
            )
        upgrade_to_head(engine)
        with engine.connect() as connection:
            versions = dict(
                connection.execute(select(workflow_versions.c.version, workflow_versions.c.document)).all()
            )
            run_document = connection.execute(select(executions.c.document)).scalar_one()
            wakes = dict(connection.execute(select(node_states.c.node_key, node_states.c.wake_at)).all())
            expiry = connection.execute(select(pause_points.c.expires_at)).scalar_one()
        assert timeout(versions[1]) == TEN_YEARS
        assert timeout(versions[2]) == 60
        assert timeout(run_document) == TEN_YEARS
        assert wakes["a"] <= time.time() + TEN_YEARS
        assert wakes["b"] == 0
        assert wakes["c"] == 100.0
        assert expiry <= time.time() + TEN_YEARS
    finally:
        engine.dispose()
