"""What an operator does to a real deployment: readiness, retention (in the background and with
`runctl prune`), `runctl db upgrade|current|backup` and `runctl --version`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runctl.client import Client
from runctl.v1 import common_pb2, event_pb2, execution_pb2
from runctl_server.store.migrate import head_revision
from tests.engine_helpers import linear
from tests.observability import Scrape
from tests.support import running_server, settings_for, wait_for

COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
ERROR = common_pb2.EXECUTION_STATUS_ERROR
PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
HELLO = linear({"id": "greet", "type": "transform", "config": {"output": "hi"}}, name="hello")
FAILS = linear({"id": "boom", "type": "fail", "config": {"message": "on purpose"}}, name="fails")
WAITS = linear({"id": "confirm", "type": "wait"}, name="waits")
DAY = 86400.0


def runctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "runctl.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"runctl {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def _count(db: Path, sql: str, *params: Any) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(sql, params).fetchone()[0])


# -- readiness -----------------------------------------------------------------------------------------


def test_readiness_checks_the_database_and_turns_not_ready_while_draining(tmp_path: Path) -> None:
    with running_server(settings_for(f"sqlite:///{tmp_path / 'r.db'}")) as handle:
        ready = httpx.get(f"{handle.http_url}/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["ready"] is True
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"].startswith("at head")
        assert httpx.get(f"{handle.http_url}/healthz").status_code == 200

        handle.run(handle.server.drain(0))
        draining = httpx.get(f"{handle.http_url}/readyz")
        assert draining.status_code == 503
        assert draining.json()["checks"]["draining"] is True
        assert draining.json()["ready"] is False


def test_readiness_says_when_the_schema_is_behind(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with running_server(settings_for(f"sqlite:///{db}")) as handle:
        with sqlite3.connect(db) as connection:  # as if an older runctl had migrated it
            connection.execute("UPDATE alembic_version SET version_num = '0009'")
        answer = httpx.get(f"{handle.http_url}/readyz")
        assert answer.status_code == 503
        assert "runctl db upgrade" in answer.json()["checks"]["migrations"]
        with sqlite3.connect(db) as connection:  # upgraded ahead by a newer runctl: serve on
            connection.execute("UPDATE alembic_version SET version_num = '0099'")
        ahead = httpx.get(f"{handle.http_url}/readyz")
        assert ahead.status_code == 200
        assert "newer than this runctl" in ahead.json()["checks"]["migrations"]
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (head_revision(),))
        assert httpx.get(f"{handle.http_url}/readyz").status_code == 200


# -- retention -----------------------------------------------------------------------------------------


def _history(db: Path) -> dict[str, Any]:
    return {
        "executions": _count(db, "SELECT COUNT(*) FROM executions"),
        "nodes": _count(db, "SELECT COUNT(*) FROM node_states"),
        "events": _count(db, "SELECT COUNT(*) FROM events"),
    }


def _age(db: Path, execution_ids: list[str], days: float) -> None:
    """Make runs look as if they ended `days` ago (time passing, without waiting for it)."""
    with sqlite3.connect(db) as connection:
        for execution_id in execution_ids:
            connection.execute(
                "UPDATE executions SET ended_at = ended_at - ? WHERE id = ?", (days * DAY, execution_id)
            )


def _make_history(db: Path) -> dict[str, str]:
    """Two old ended runs, one old run still waiting (it started long ago), one recent ended run."""
    with running_server(settings_for(f"sqlite:///{db}")) as handle, Client(handle.grpc_target) as client:
        old_done = client.start(HELLO)
        old_failed = client.start(FAILS)
        waiting = client.start(WAITS)
        assert client.wait(old_done.id, timeout=30).status == COMPLETED
        assert client.wait(old_failed.id, timeout=30).status == ERROR
        client.wait(waiting.id, until=[PAUSED], timeout=30)
        recent = client.start(HELLO)
        assert client.wait(recent.id, timeout=30).status == COMPLETED
    _age(db, [old_done.id, old_failed.id], days=10)
    with sqlite3.connect(db) as connection:  # the waiting run is old too, but has not ended
        connection.execute(
            "UPDATE executions SET created_at = created_at - ? WHERE id = ?", (10 * DAY, waiting.id)
        )
    return {"old_done": old_done.id, "old_failed": old_failed.id, "waiting": waiting.id, "recent": recent.id}


def test_background_retention_removes_old_ended_runs_and_nothing_else(tmp_path: Path) -> None:
    db = tmp_path / "retention.db"
    runs = _make_history(db)
    old = [runs["old_done"], runs["old_failed"]]
    old_events = _count(db, "SELECT COUNT(*) FROM events WHERE execution_id IN (?, ?)", *old)
    kept_events = _count(
        db, "SELECT COUNT(*) FROM events WHERE execution_id IN (?, ?)", runs["waiting"], runs["recent"]
    )
    last_old_event = _count(db, "SELECT MAX(sequence) FROM events WHERE execution_id IN (?, ?)", *old)
    before = _history(db)
    assert old_events > 0

    settings = settings_for(f"sqlite:///{db}", retention_seconds=7 * DAY)
    with running_server(settings) as handle, Client(handle.grpc_target) as client:
        wait_for(
            lambda: Scrape(handle.http_url).value("runctl_retention_pruned_runs_total") >= 2,
            timeout=30,
            what="retention to prune the two old runs",
        )
        for execution_id in old:
            with pytest.raises(grpc.RpcError) as gone:
                client.get(execution_id)
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        assert client.get(runs["waiting"]).status == PAUSED
        assert client.get(runs["recent"]).status == COMPLETED
        # A watcher resuming from inside the removed history is told it is gone.
        stream = client.events.StreamEvents(event_pb2.StreamEventsRequest(after_sequence=1))
        first = next(stream)
        stream.cancel()
        assert first.history_truncated
        assert first.cursor >= last_old_event
        # The waiting run still resumes and completes: nothing of it was touched.
        pause_point = client.get(runs["waiting"]).pause_points[0]
        client.executions.ResumePausePoint(
            execution_pb2.ResumePausePointRequest(
                execution_id=runs["waiting"], context_id=pause_point.context_id
            )
        )
        assert client.wait(runs["waiting"], timeout=30).status == COMPLETED

    after = _history(db)
    assert after["executions"] == before["executions"] - 2
    assert _count(db, "SELECT COUNT(*) FROM events WHERE execution_id IN (?, ?)", *old) == 0
    assert _count(db, "SELECT COUNT(*) FROM node_states WHERE execution_id IN (?, ?)", *old) == 0
    assert _count(db, "SELECT COUNT(*) FROM pause_points WHERE execution_id IN (?, ?)", *old) == 0
    assert (
        _count(
            db, "SELECT COUNT(*) FROM events WHERE execution_id IN (?, ?)", runs["waiting"], runs["recent"]
        )
        > kept_events - 1
    )


def test_prune_command_counts_then_removes(tmp_path: Path) -> None:
    db = tmp_path / "prune.db"
    runs = _make_history(db)
    url = f"sqlite:///{db}"
    old_nodes = _count(
        db,
        "SELECT COUNT(*) FROM node_states WHERE execution_id IN (?, ?)",
        runs["old_done"],
        runs["old_failed"],
    )
    before = _history(db)

    dry = json.loads(runctl("prune", "--older-than", "7d", "--dry-run", "--json", "--db-url", url).stdout)
    assert dry["dryRun"] is True
    assert dry["runs"] == 2
    assert dry["nodes"] == old_nodes
    assert dry["events"] > 0
    assert _history(db) == before  # a dry run removes nothing

    done = runctl("prune", "--older-than", "7d", "--db-url", url)
    assert "removed: 2 runs" in done.stdout
    assert f"{old_nodes} nodes" in done.stdout
    assert _history(db)["executions"] == before["executions"] - 2
    assert _history(db)["events"] == before["events"] - dry["events"]
    assert "removed: 0 runs" in runctl("prune", "--older-than", "7d", "--db-url", url).stdout
    # Younger than a day: the recent run is kept by 7d, removed by 1s.
    assert (
        json.loads(runctl("prune", "--older-than", "1s", "--dry-run", "--json", "--db-url", url).stdout)[
            "runs"
        ]
        == 1
    )


def test_prune_refuses_a_bad_duration(tmp_path: Path) -> None:
    done = runctl("prune", "--older-than", "soon", "--db-url", f"sqlite:///{tmp_path / 'x.db'}", check=False)
    assert done.returncode == 1
    assert "not a duration" in done.stderr


# -- database commands ---------------------------------------------------------------------------------


def test_db_current_and_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    behind = runctl("db", "current", "--db-url", url, check=False)
    assert behind.returncode == 1
    assert "behind" in behind.stdout
    assert "upgraded from revision none" in runctl("db", "upgrade", "--db-url", url).stdout
    now = json.loads(runctl("db", "current", "--json", "--db-url", url).stdout)
    assert now["atHead"] is True
    assert now["current"] == now["head"]
    assert "already at head" in runctl("db", "upgrade", "--db-url", url).stdout


def test_db_commands_say_when_the_database_is_unreachable() -> None:
    done = runctl("db", "current", "--db-url", "postgresql://nobody@127.0.0.1:1/none", check=False)
    assert done.returncode == 1
    assert "database error" in done.stderr
    assert "Traceback" not in done.stderr


def test_backup_while_serving_gives_a_database_a_fresh_server_serves(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    copy = tmp_path / "copy.db"
    with running_server(settings_for(f"sqlite:///{db}")) as handle, Client(handle.grpc_target) as client:
        done = [client.start(HELLO) for _ in range(5)]
        for run in done:
            client.wait(run.id, timeout=30)
        waiting = client.start(WAITS)
        client.wait(waiting.id, until=[PAUSED], timeout=30)
        answer = runctl("db", "backup", str(copy), "--db-url", f"sqlite:///{db}")
        assert "backed up" in answer.stdout
        # Serving goes on during and after the backup.
        assert client.wait(client.start(HELLO).id, timeout=30).status == COMPLETED
    assert not Path(f"{copy}-wal").exists()
    again = runctl("db", "backup", str(copy), "--db-url", f"sqlite:///{db}", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr

    with (
        running_server(settings_for(f"sqlite:///{copy}")) as restored,
        Client(restored.grpc_target) as client,
    ):
        for run in done:
            assert client.get(run.id).status == COMPLETED
        # The run that waited at backup time waits in the copy and goes on there.
        pause_point = client.get(waiting.id).pause_points[0]
        client.executions.ResumePausePoint(
            execution_pb2.ResumePausePointRequest(execution_id=waiting.id, context_id=pause_point.context_id)
        )
        assert client.wait(waiting.id, timeout=30).status == COMPLETED
        with grpc.insecure_channel(restored.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_backup_of_postgresql_points_to_its_own_tools() -> None:
    done = runctl(
        "db", "backup", "/tmp/never.db", "--db-url", "postgresql://postgres@127.0.0.1/x", check=False
    )
    assert done.returncode == 1
    assert "pg_dump" in done.stderr


def test_version() -> None:
    from importlib.metadata import version

    assert runctl("--version").stdout.strip() == f"runctl {version('runctl')}"


@pytest.mark.postgres
def test_prune_on_postgresql(pg_url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with running_server(settings_for(pg_url)) as handle, Client(handle.grpc_target) as client:
        runs = [client.start(HELLO) for _ in range(3)]
        for run in runs:
            client.wait(run.id, timeout=30)
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "UPDATE executions SET ended_at = ended_at - %s WHERE id = %s", (10 * DAY, runs[0].id)
        )
    dry = json.loads(runctl("prune", "--older-than", "7d", "--dry-run", "--json", "--db-url", pg_url).stdout)
    assert (dry["runs"], dry["nodes"]) == (1, 3)
    assert "removed: 1 runs, 3 nodes" in runctl("prune", "--older-than", "7d", "--db-url", pg_url).stdout
    with running_server(settings_for(pg_url)) as handle, Client(handle.grpc_target) as client:
        with pytest.raises(grpc.RpcError):
            client.get(runs[0].id)
        assert [client.get(run.id).status for run in runs[1:]] == [COMPLETED, COMPLETED]
