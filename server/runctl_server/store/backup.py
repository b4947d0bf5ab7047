"""Online backup of a SQLite database: SQLite's backup API copies a consistent snapshot page by page
while the server goes on reading and writing (WAL), into a file a fresh server can serve."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runctl_server.settings import SettingsError
from runctl_server.store.database import normalize_db_url
from runctl_server.store.process_lock import sqlite_file

# Pages copied per step; between steps the server's writer may commit.
PAGES_PER_STEP = 1024


class BackupError(RuntimeError):
    """The backup could not be made; the message says why."""


def backup_sqlite(db_url: str, target: Path) -> int:
    """Copy the database at `db_url` to `target` (which must not exist); answers the pages copied."""
    try:
        url = normalize_db_url(db_url)
    except SettingsError as exc:
        raise BackupError(str(exc)) from None
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            "runctl db backup copies SQLite databases; back up PostgreSQL with its own tools "
            "(pg_dump, or continuous archiving)"
        )
    source = sqlite_file(url)
    if source is None or not source.exists():
        raise BackupError(f"no SQLite database at {db_url}")
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder")
    copied = 0

    def progress(_status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total - remaining

    partial = target.with_name(target.name + ".partial")
    try:
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
            src.execute("PRAGMA busy_timeout=10000")
            src.backup(dst, pages=PAGES_PER_STEP, progress=progress)
            # One file, nothing beside it: the copy needs no -wal file to be whole.
            dst.execute("PRAGMA journal_mode=DELETE")
        partial.rename(target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from None
    return copied
