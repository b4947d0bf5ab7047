"""Migrations run once under a lock: replicas that start together on one PostgreSQL database all serve."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import alembic_config, head_revision, upgrade_to_head
from tests.postgres import temporary_database
from tests.support import ServerProcess, await_serving, launch_server

pytestmark = pytest.mark.postgres


def version_rows(db_url: str) -> list[str]:
    database = create_db_engine(db_url)
    try:
        with database.connect() as connection:
            return list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        database.dispose()


def upgrade_to(db_url: str, revision: str) -> None:
    """Leave the database at an older revision, as a previous release would have."""
    database = create_db_engine(db_url)
    try:
        with database.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        database.dispose()


def previous_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    return head.down_revision


def stop_all(servers: list[ServerProcess]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.mark.parametrize("start_from", ["empty", "older"])
def test_replicas_starting_together_all_serve_and_migrate_once(tmp_path: Path, start_from: str) -> None:
    with temporary_database() as db_url:
        if start_from == "older":
            upgrade_to(db_url, previous_revision())
        # All three are launched before any is waited for, so their migrations overlap.
        servers = [launch_server(db_url, tmp_path) for _ in range(3)]
        try:
            for server in servers:
                await_serving(server, timeout=60)
            assert version_rows(db_url) == [head_revision()]
            for server in servers:
                assert "duplicate key" not in server.log()
        finally:
            stop_all(servers)
        for server in servers:
            assert server.process.returncode == 0, server.log()


def test_upgrade_from_four_threads_at_once_migrates_once() -> None:
    with temporary_database() as db_url:
        engines = [create_db_engine(db_url) for _ in range(4)]
        start = threading.Barrier(len(engines))
        errors: list[BaseException] = []

        def upgrade(database: sa.Engine) -> None:
            try:
                start.wait(10)
                upgrade_to_head(database)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=upgrade, args=(database,)) for database in engines]
        try:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        finally:
            for database in engines:
                database.dispose()
        assert not any(thread.is_alive() for thread in threads), "an upgrade hung"
        assert errors == []
        assert version_rows(db_url) == [head_revision()]
