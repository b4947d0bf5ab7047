"""The peer of bench/engine_throughput.py: the same 10-step workflow as durable DBOS workflows.

DBOS (`dbos` on PyPI) is a durable-execution library: a workflow's steps are checkpointed in its system
database, here a SQLite file in WAL mode, the database runctl uses by default. Each workflow has 10 steps
(as runctl's benchmark workflow has 10 nodes), each rendering a string from the input, as runctl's
transform nodes do. `--concurrency` threads each run workflows back to back until `--runs` are done.
It prints one JSON line: runs, steps, wall seconds, runs/s and steps/s, and SQLite's durability settings.

engine_throughput.py runs this in its own process, beside runctl, and prints the ratio. Alone:

    .venv/bin/python bench/dbos_peer.py [--runs 500] [--concurrency 64] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STEPS = 10
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"))
    args = parser.parse_args(argv)
    try:
        import sqlalchemy
        from dbos import DBOS, DBOSConfig
    except ImportError:
        print(json.dumps({"error": "dbos is not installed (pip install -e '.[dev]')"}))
        return 0

    with tempfile.TemporaryDirectory(prefix="runctl-dbos-") as folder:
        path = Path(folder) / "dbos.sqlite"
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection uses WAL

        @DBOS.step()
        def render(n: int, index: int) -> str:
            return f"{n}-{index}"

        @DBOS.workflow()
        def ten_steps(n: int) -> list[str]:
            return [render(n, index) for index in range(STEPS)]

        database = sqlalchemy.create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False}, pool_size=args.concurrency + 8
        )

        @sqlalchemy.event.listens_for(database, "connect")
        def configure(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={args.synchronous}")
            dbapi_connection.execute("PRAGMA busy_timeout=10000")

        config: DBOSConfig = {
            "name": "runctl-peer",
            "system_database_url": f"sqlite:///{path}",
            "system_database_engine": database,
            "max_executor_threads": args.concurrency + 8,
            "log_level": "WARNING",
        }
        DBOS(config=config)
        DBOS.launch()
        try:
            with database.connect() as settings:
                mode = settings.exec_driver_sql("PRAGMA journal_mode").scalar()
                synchronous = settings.exec_driver_sql("PRAGMA synchronous").scalar()
            for n in range(args.warmup):
                ten_steps(-n - 1)
            counter = itertools.count()
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        n = next(counter)
                    if n >= args.runs:
                        return
                    ten_steps(n)

            threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began
        finally:
            DBOS.destroy()
        print(
            json.dumps(
                {
                    "runs": args.runs,
                    "steps": args.runs * STEPS,
                    "wall": wall,
                    "runs_per_s": args.runs / wall,
                    "steps_per_s": args.runs * STEPS / wall,
                    "journal_mode": mode,
                    "synchronous": SYNCHRONOUS.get(int(synchronous or 0), str(synchronous)),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
