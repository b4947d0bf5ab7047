"""A throwaway database on the local PostgreSQL server (started if it is down)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


def _start_cluster() -> None:
    versions = (
        sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").exists() else []
    )
    if not versions:
        raise RuntimeError("PostgreSQL is not running on 127.0.0.1:5432 and no local cluster is installed")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )


def ensure_postgres(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    started = False
    while True:
        try:
            psycopg.connect(ADMIN_DSN).close()
            return
        except psycopg.OperationalError:
            if not started:
                _start_cluster()
                started = True
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a fresh database, hand out its URL, drop it afterwards."""
    ensure_postgres()
    name = f"runctl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
