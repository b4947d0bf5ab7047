"""A PostgreSQL cluster of one test's own, which the test may stop and start under a running server
(the shared test cluster of tests/postgres.py must stay up for every other test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.postgres import HOST, _cluster_owner, _find_binaries, _free_port


class OwnCluster:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _find_binaries()
        self.owner = _cluster_owner()
        self.base = Path(tempfile.mkdtemp(prefix="runctl-pg-outage-"))
        self.base.chmod(0o755)  # the cluster's owner must reach the data folder inside
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = _free_port()

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        argv = list(command)
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner.pw_name, "--", *argv]
        done = subprocess.run(argv, cwd=self.base, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}{tail}")

    def create(self) -> None:
        self.data.mkdir(mode=0o700)
        if self.owner is not None:
            os.chown(self.data, self.owner.pw_uid, self.owner.pw_gid)
            os.chown(self.base, self.owner.pw_uid, self.owner.pw_gid)
        self._run(str(self.initdb), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE runctl")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses={HOST} -c fsync=off"
        self._run(str(self.pg_ctl), "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, as when the database host goes away."""
        self._run(str(self.pg_ctl), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    self.owner.pw_name,
                    "--",
                    str(self.pg_ctl),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "stop",
                ]
                if self.owner is not None
                else [str(self.pg_ctl), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def own_cluster() -> Iterator[OwnCluster]:
    cluster = OwnCluster()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.remove()
