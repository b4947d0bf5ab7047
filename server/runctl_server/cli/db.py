"""Server-side operations, straight on the database (not over gRPC): `runctl db upgrade|current|backup`
and `runctl prune`. `register(app)` adds them; the heavy server modules are imported only when a command
runs, so `runctl --help` stays quick.

Run where the database is reachable (RUNCTL_DB_URL or --db-url).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from runctl.cli.context import RunctlGroup, fail, print_json, state
from runctl_server.cli.database import DbUrlOption, open_database

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

db_app = typer.Typer(
    name="db",
    help="The database: apply migrations, show the schema revision, back up (SQLite).",
    no_args_is_help=True,
    cls=RunctlGroup,
)

JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def register(app: typer.Typer) -> None:
    """Add `runctl db ...` and `runctl prune` to the command line."""
    app.add_typer(db_app)
    app.command("prune")(prune)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context, db_url: DbUrlOption = None) -> None:
    """Apply every pending migration (once, under a lock, even with replicas starting meanwhile)."""
    from runctl_server.store.migrate import current_revision, head_revision, upgrade_to_head

    with open_database(ctx, db_url) as engine:
        before = current_revision(engine)
        upgrade_to_head(engine)
        after = current_revision(engine)
    if before == after:
        state(ctx).out.print(f"already at head: revision {after} ({head_revision()} is the newest)")
    else:
        state(ctx).out.print(f"upgraded from revision {before or 'none (empty database)'} to {after}")


@db_app.command("current")
def current(ctx: typer.Context, db_url: DbUrlOption = None, as_json: JsonOutput = False) -> None:
    """Show the schema revision of the database and the newest this runctl knows; exit 1 when behind."""
    from runctl_server.store.migrate import current_revision, head_revision

    with open_database(ctx, db_url) as engine:
        revision = current_revision(engine)
    head = head_revision()
    at_head = revision == head
    if as_json:
        print_json({"current": revision, "head": head, "atHead": at_head})
    else:
        shown = revision or "none (empty database)"
        verdict = "at head" if at_head else "behind: run `runctl db upgrade`"
        state(ctx).out.print(f"revision {shown}, head {head}: {verdict}")
    if not at_head:
        raise typer.Exit(1)


@db_app.command("backup")
def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the copy (must not exist yet).")],
    db_url: DbUrlOption = None,
) -> None:
    """Copy a SQLite database with SQLite's online backup API: safe while a server serves it, and the
    copy is a consistent database a fresh server can serve."""
    from runctl_server.settings import Settings, SettingsError
    from runctl_server.store.backup import BackupError, backup_sqlite

    try:
        url = Settings.from_env(db_url=db_url).db_url
    except SettingsError as exc:
        fail(ctx, str(exc))
    started = time.monotonic()
    try:
        pages = backup_sqlite(url, file.expanduser())
    except BackupError as exc:
        fail(ctx, str(exc))
    state(ctx).out.print(f"backed up {pages} pages to {file} in {time.monotonic() - started:.2f}s")


def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Remove runs that ended longer ago than this: 30d, 12h, 90m.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be removed.")] = False,
    db_url: DbUrlOption = None,
    as_json: JsonOutput = False,
) -> None:
    """Remove ended runs (with their nodes, pause points, tasks and events) that ended before a cut-off;
    prints the counts. Running, paused and queued runs are never touched."""
    from runctl_server.settings import SettingsError, parse_duration
    from runctl_server.store.retention import count_prunable
    from runctl_server.store.retention import prune as remove

    try:
        cutoff = time.time() - parse_duration(older_than, "--older-than")
    except SettingsError as exc:
        fail(ctx, str(exc))
    with open_database(ctx, db_url) as engine:
        _require_schema(ctx, engine)
        counts = count_prunable(engine, cutoff) if dry_run else remove(engine, cutoff)
    if as_json:
        print_json({"dryRun": dry_run, **counts.as_dict()})
        return
    verb = "would remove" if dry_run else "removed"
    parts = ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.as_dict().items())
    state(ctx).out.print(f"{verb}: {parts}")


def _require_schema(ctx: typer.Context, engine: Engine) -> None:
    from runctl_server.store.migrate import current_revision, head_revision

    if current_revision(engine) != head_revision():
        fail(ctx, "the database schema is not at head: run `runctl db upgrade` first")
