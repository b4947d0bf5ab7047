"""SQLite is single-process: a second server on the same file refuses to start, and says why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from runctl_server.app import StartupError
from runctl_server.settings import Address
from runctl_server.store.process_lock import acquire, sqlite_file
from tests.support import LOOPBACK, free_port, running_server, settings_for, spawn_server

IN_USE = "another runctl process is already using the SQLite database"


def test_second_process_on_the_same_file_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "runctl.db"
    first = spawn_server(f"sqlite:///{db}", tmp_path)
    try:
        env = {
            **os.environ,
            "RUNCTL_DB_URL": f"sqlite:///{db}",
            "RUNCTL_GRPC_ADDR": f"{LOOPBACK}:{free_port()}",
            "RUNCTL_HTTP_ADDR": f"{LOOPBACK}:{free_port()}",
        }
        began = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "runctl.cli", "serve"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - began
        output = second.stdout + second.stderr
        assert second.returncode != 0, output
        assert f"{IN_USE} {db.resolve()} (pid {first.process.pid})" in output
        assert "use PostgreSQL to run several replicas" in output
        # It gave up at once rather than waiting for the lock (the bound covers interpreter start-up).
        assert took < 30, took
        assert first.process.poll() is None, "the first server must keep serving"
    finally:
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(30) == 0, first.log()
    # The lock died with its process: a new one starts on the same file.
    again = spawn_server(f"sqlite:///{db}", tmp_path)
    again.process.send_signal(signal.SIGTERM)
    assert again.process.wait(30) == 0, again.log()


def test_killed_process_leaves_no_lock_behind(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'runctl.db'}"
    first = spawn_server(db_url, tmp_path)
    first.process.kill()
    first.process.wait(30)
    again = spawn_server(db_url, tmp_path)
    again.process.send_signal(signal.SIGTERM)
    assert again.process.wait(30) == 0, again.log()


def test_second_server_in_one_process_is_refused_and_can_start_after_a_stop(sqlite_url: str) -> None:
    refused = pytest.raises(StartupError, match=f"{IN_USE} .* \\(pid {os.getpid()}\\)")
    with running_server(settings_for(sqlite_url)), refused, running_server(settings_for(sqlite_url)):
        pass
    for _ in range(2):  # stop() gave the lock back, each time
        with running_server(settings_for(sqlite_url)):
            pass


def test_failed_start_gives_the_lock_back(sqlite_url: str) -> None:
    # Dev mode refuses a public address after the lock is taken: it must not keep the lock.
    public = replace(settings_for(sqlite_url), http_addr=Address("0.0.0.0", 0))
    with pytest.raises(StartupError, match="not a loopback address"), running_server(public):
        pass
    with running_server(settings_for(sqlite_url)):
        pass


def test_servers_on_different_files_do_not_conflict(tmp_path: Path) -> None:
    with (
        running_server(settings_for(f"sqlite:///{tmp_path / 'a.db'}")),
        running_server(settings_for(f"sqlite:///{tmp_path / 'b.db'}")),
    ):
        pass


def test_lock_file_sits_beside_the_database_and_names_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "runctl.db"
    lock = acquire(make_url(f"sqlite:///{db}"))
    assert lock is not None
    try:
        assert lock.path == tmp_path / "runctl.db-runctl.lock"
        assert lock.path.read_text().strip() == str(os.getpid())
    finally:
        lock.release()
    assert not lock.held
    assert lock.path.read_text() == ""  # no stale pid once released


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:mem?mode=memory&cache=shared&uri=true",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ],
)
def test_nothing_to_lock_for_memory_databases_and_postgresql(url: str) -> None:
    assert sqlite_file(make_url(url)) is None
    assert acquire(make_url(url)) is None


def test_relative_path_is_locked_by_its_absolute_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_file(make_url("sqlite:///runctl.db")) == tmp_path.resolve() / "runctl.db"
