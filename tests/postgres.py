"""A throwaway database for tests: on the PostgreSQL server at 127.0.0.1:5432 (started with
pg_ctlcluster if it is down) or, where there is none, on a throwaway cluster this test session makes.

The throwaway cluster is made once per machine and user and shared by every process of the session
(pytest-xdist workers): a file lock under $TMPDIR/runctl-test-pg-<uid> lets one process make it and
the others reuse it, each process holds a shared lock on it while it may use it, and the last one to
exit stops and removes it. RUNCTL_TEST_PG_FORCE_LOCAL=1 skips the server on 5432, to test this path.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psycopg
import pytest

FORCE_LOCAL = "RUNCTL_TEST_PG_FORCE_LOCAL"
SYSTEM_PORT = 5432
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Server:
    """Where the tests' PostgreSQL listens; user postgres, trust authentication."""

    port: int
    admin_db: str

    @property
    def dsn(self) -> str:
        return f"host={HOST} port={self.port} user=postgres dbname={self.admin_db} connect_timeout=3"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"


SYSTEM = Server(SYSTEM_PORT, "test")

# Chosen once per process: every test of a session uses the same server, or skips (or fails) for
# the same reason without trying again.
_chosen: Server | None = None
_unavailable: str | None = None
_failed: str | None = None


def _reachable(server: Server) -> bool:
    try:
        psycopg.connect(server.dsn).close()
    except psycopg.OperationalError:
        return False
    return True


def _start_system_cluster() -> bool:
    """Start the Debian cluster behind 5432 if there is one; False if there is none to start."""
    clusters = Path("/etc/postgresql")
    versions = sorted((p.name for p in clusters.iterdir()), key=_version_key) if clusters.is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        return False
    started = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )
    return started.returncode == 0


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _choose(timeout: float) -> Server:
    if not os.environ.get(FORCE_LOCAL):
        if _reachable(SYSTEM):
            return SYSTEM
        if _start_system_cluster():
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if _reachable(SYSTEM):
                    return SYSTEM
                time.sleep(0.5)
    return LocalCluster().ensure()


def ensure_postgres(timeout: float = 60) -> Server:
    """The server the tests use, started or made on first call; skips the test when there can be none."""
    global _chosen, _unavailable, _failed
    if _chosen is None and _unavailable is None and _failed is None:
        try:
            _chosen = _choose(timeout)
        except PostgresUnavailable as exc:
            _unavailable = str(exc)
        except Exception as exc:
            _failed = f"{type(exc).__name__}: {exc}"
            raise
    if _failed is not None:
        raise RuntimeError(f"could not start the tests' PostgreSQL: {_failed}")
    if _chosen is None:
        pytest.skip(f"no PostgreSQL for this test: {_unavailable}")
    return _chosen


def admin_dsn() -> str:
    """libpq DSN of the maintenance database, for CREATE and DROP DATABASE."""
    return ensure_postgres().dsn


def __getattr__(name: str) -> str:
    # ADMIN_DSN stays importable, computed on first use: which server it names is known only then.
    if name == "ADMIN_DSN":
        return admin_dsn()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a fresh database, hand out its URL, drop it afterwards."""
    server = ensure_postgres()
    name = f"runctl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the throwaway cluster ----------------------------------------------------------------------------


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be had on this machine (not installed, or no user to run it as)."""


def _find_binaries() -> tuple[Path, Path]:
    """initdb and pg_ctl of one installation: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name), reverse=True
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder / "initdb", folder / "pg_ctl"
    raise PostgresUnavailable(
        "PostgreSQL is not running on 127.0.0.1:5432 and initdb/pg_ctl were not found "
        "(on PATH or in /usr/lib/postgresql/*/bin): install PostgreSQL to run these tests"
    )


def _cluster_owner() -> pwd.struct_passwd | None:
    """Who runs initdb and postgres: this user, or `postgres` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root, which initdb refuses, and there is no 'postgres' user to run it as"
        ) from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class LocalCluster:
    """The shared throwaway cluster of this machine and user."""

    def __init__(self) -> None:
        self.base = Path(tempfile.gettempdir()) / f"runctl-test-pg-{os.getuid()}"
        self.data = self.base / "data"
        self.run_dir = self.base / "run"  # the Unix socket and the server log
        self.port_file = self.base / "port"
        self.owner = _cluster_owner()
        self.initdb, self.pg_ctl = _find_binaries()

    def ensure(self) -> Server:
        """Reuse the running cluster or make one, then hold it until this process exits."""
        self._prepare_base()
        with self._exclusive():
            port = self._running_port()
            if port is None:
                self._remove()
                port = self._create()
            _hold(self)
        return Server(port, "postgres")

    def _prepare_base(self) -> None:
        self.base.mkdir(mode=0o755, exist_ok=True)
        info = self.base.lstat()
        # A predictable name in a shared folder: use it only if it is really ours.
        if not self.base.is_dir() or self.base.is_symlink() or info.st_uid != os.getuid():
            raise RuntimeError(f"{self.base} exists but is not a folder owned by this user")

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with (self.base / "lock").open("ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield  # closing the file drops the lock

    def _running_port(self) -> int | None:
        """The port of the cluster left by an earlier process if it still answers, else None."""
        try:
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            with psycopg.connect(Server(port, "postgres").dsn) as connection:
                row = connection.execute("SHOW data_directory").fetchone()
        except psycopg.Error:
            return None
        # Something else may have taken the port since: it must be our cluster.
        return port if row is not None and Path(row[0]).resolve() == self.data.resolve() else None

    def _as_owner(self, command: list[str]) -> list[str]:
        if self.owner is None:
            return command
        if shutil.which("runuser"):
            return ["runuser", "-u", self.owner.pw_name, "--", *command]
        return ["su", self.owner.pw_name, "-s", "/bin/sh", "-c", shlex.join(command)]

    def _run(self, command: list[str], what: str) -> None:
        # cwd: the owner may not be allowed into ours (root's home), and initdb would complain.
        done = subprocess.run(
            self._as_owner(command), cwd=self.base, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log = self.run_dir / "postgres.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}")

    def _create(self) -> int:
        for folder in (self.data, self.run_dir):
            folder.mkdir(mode=0o700)
            if self.owner is not None:
                os.chown(folder, self.owner.pw_uid, self.owner.pw_gid)
        initdb = [str(self.initdb), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        self._run([*initdb, "--no-locale", "--no-sync"], "initdb")
        for _attempt in range(3):  # the free port may be taken again before postgres binds it
            port = _free_port()
            # Durability is pointless for a throwaway cluster; many servers at once need connections.
            options = (
                f"-p {port} -k {self.run_dir} -c listen_addresses={HOST} -c max_connections=300"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                log = self.run_dir / "postgres.log"
                pg_ctl = [str(self.pg_ctl), "-D", str(self.data), "-l", str(log)]
                self._run([*pg_ctl, "-w", "-t", "60", "-o", options, "start"], "pg_ctl start")
            except RuntimeError:
                if _attempt == 2:
                    raise
                continue
            self.port_file.write_text(str(port))
            return port
        raise AssertionError("unreachable")

    def _remove(self) -> None:
        """Stop a cluster that no longer answers (or is stopping) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner([str(self.pg_ctl), "-D", str(self.data), "-m", "immediate", "stop"]),
                cwd=self.base,
                capture_output=True,
                check=False,
            )
        self.port_file.unlink(missing_ok=True)
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def release(self, users: BinaryIO) -> None:
        """Drop this process's hold; the last process to let go stops and removes the cluster."""
        users.close()
        with self._exclusive():
            with (self.base / "users").open("ab") as probe:
                try:
                    fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another process of the session still uses it
            subprocess.run(
                self._as_owner([str(self.pg_ctl), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                cwd=self.base,
                capture_output=True,
                check=False,
            )
            self._remove()


def _hold(cluster: LocalCluster) -> None:
    """Take this process's shared hold on the cluster (under the exclusive lock) until exit."""
    users = (cluster.base / "users").open("ab")  # held until exit
    fcntl.flock(users.fileno(), fcntl.LOCK_SH)
    atexit.register(cluster.release, users)
