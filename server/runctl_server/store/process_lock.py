"""One runctl process per SQLite file: an exclusive OS lock on a file beside the database.

SQLite has no leases or claims across processes, so a second `runctl serve` on the same file would
drive the same runs twice. The lock is `flock`, not `fcntl` record locking: flock belongs to the open
file, so the kernel drops it when the process dies (even by SIGKILL), and a second server inside the
same process (tests) conflicts too instead of silently sharing the lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import URL

LOCK_SUFFIX = "-runctl.lock"


class DatabaseInUse(RuntimeError):
    """Another process holds the lock of this SQLite database; the message says which and what to do."""

    def __init__(self, database: Path, pid: int | None) -> None:
        holder = f" (pid {pid})" if pid is not None else ""
        super().__init__(
            f"another runctl process is already using the SQLite database {database}{holder}; "
            "SQLite is single-process: stop it first, or use PostgreSQL to run several replicas"
        )
        self.database = database
        self.pid = pid


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, absolute; None for PostgreSQL and in-memory databases."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):  # a SQLite URI filename
        path, _, options = database.removeprefix("file:").partition("?")
        if "mode=memory" in options or not path:
            return None
        database = path
    return Path(database).resolve()


class ProcessLock:
    """The held lock; `release()` (or process exit) frees it. The file stays: removing a lock file
    races with a process that has just opened it and would let two processes hold "the" lock."""

    def __init__(self, database: Path, file: BinaryIO) -> None:
        self.database = database
        self.path = lock_file(database)
        # A file object rather than a bare descriptor: a server that failed half-way and was dropped
        # still gives the lock back when it is collected.
        self._file: BinaryIO | None = file

    def release(self) -> None:
        if self._file is None:
            return
        try:
            os.ftruncate(self._file.fileno(), 0)  # no stale pid for the next reader
        finally:
            self._file.close()  # closing the last descriptor drops the flock
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None


def lock_file(database: Path) -> Path:
    return database.with_name(database.name + LOCK_SUFFIX)


def acquire(url: URL) -> ProcessLock | None:
    """Lock the SQLite file of `url` for this process without waiting; None when there is nothing
    to lock. Raises DatabaseInUse when another process (or another server here) holds it, OSError
    when the lock file cannot be made."""
    database = sqlite_file(url)
    if database is None:
        return None
    # Not inheritable (Python's default): a child process must not keep the lock after we exit.
    descriptor = os.open(lock_file(database), os.O_RDWR | os.O_CREAT, 0o666)
    file = os.fdopen(descriptor, "r+b", buffering=0)
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(file)
        file.close()
        raise DatabaseInUse(database, holder) from None
    except BaseException:
        file.close()
        raise
    os.ftruncate(file.fileno(), 0)
    os.pwrite(file.fileno(), f"{os.getpid()}\n".encode(), 0)
    return ProcessLock(database, file)


def _read_pid(file: BinaryIO) -> int | None:
    """The holder's pid as it wrote it; None if it has not written it yet (or the file is odd)."""
    try:
        text = os.pread(file.fileno(), 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
