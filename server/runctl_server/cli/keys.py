"""`runctl keys ...`: create, list and revoke API keys, straight in the database (not over gRPC).

Run where the database is reachable (RUNCTL_DB_URL or --db-url); migrations are applied first, so this
works on a fresh database before the server ever started. A running server sees a new or revoked key
within a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from runctl.cli.commands_runs import JsonOption
from runctl.cli.context import RunctlGroup, fail, print_json, state
from runctl_server.cli.database import DbUrlOption, open_database

if TYPE_CHECKING:
    pass

keys_app = typer.Typer(
    name="keys",
    help="API keys (in the database directly): create, list, revoke.",
    no_args_is_help=True,
    cls=RunctlGroup,
)


def _when(moment: datetime) -> str:
    """UTC, to the second, as RFC 3339 (the database may hand back naive UTC or aware values)."""
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


@keys_app.command("create")
def create(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Option(help="The workspace the key acts in (created when missing).")],
    name: Annotated[str, typer.Option(help="A label, to tell keys apart.")] = "",
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    from runctl_server.store.api_keys import create_key

    if not workspace.strip() or len(workspace.strip()) > 64:
        fail(ctx, "--workspace must be 1 to 64 characters")
    with open_database(ctx, db_url, migrate=True) as engine:
        created = create_key(engine, workspace.strip(), name)
    if as_json:
        print_json({"id": created.info.id, "workspace": created.info.workspace_name, "key": created.key})
        return
    out = state(ctx).out
    out.print(
        f"created key [bold]{created.info.id}[/bold] for workspace [bold]{created.info.workspace_name}[/bold]"
    )
    typer.echo(created.key)
    state(ctx).err.print(
        "[yellow]warning:[/yellow] store this key now: it will not be shown again (only its hash is kept)."
    )


def list_keys(ctx: typer.Context, db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """List keys (their first characters only, never the secret)."""
    from runctl_server.store.api_keys import list_keys as stored_keys

    with open_database(ctx, db_url, migrate=True) as engine:
        keys = stored_keys(engine)
    if as_json:
        print_json(
            [
                {
                    "id": key.id,
                    "workspace": key.workspace_name,
                    "workspaceId": key.workspace_id,
                    "name": key.name,
                    "prefix": key.prefix,
                    "createdAt": _when(key.created_at),
                    "revokedAt": _when(key.revoked_at) if key.revoked_at else None,
                }
                for key in keys
            ]
        )
        return
    table = Table("ID", "WORKSPACE", "NAME", "PREFIX", "CREATED", "REVOKED")
    for column in table.columns:
        column.no_wrap = True  # ids and prefixes are for copying whole
    for key in keys:
        table.add_row(
            key.id,
            key.workspace_name,
            key.name,
            key.prefix + "…",
            _when(key.created_at),
            _when(key.revoked_at) if key.revoked_at else "",
        )
    state(ctx).out.print(table)


keys_app.command("ls")(list_keys)
keys_app.command("list", hidden=True)(list_keys)


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (from `runctl keys list`).")],
    db_url: DbUrlOption = None,
) -> None:
    """Revoke a key: a running server refuses it within a second."""
    from runctl_server.errors import NotFound
    from runctl_server.store.api_keys import revoke_key

    with open_database(ctx, db_url, migrate=True) as engine:
        try:
            info = revoke_key(engine, key_id)
        except NotFound as exc:
            fail(ctx, exc.message)
    state(ctx).out.print(
        f"revoked key [bold]{info.id}[/bold] of workspace [bold]{info.workspace_name}[/bold]"
    )
