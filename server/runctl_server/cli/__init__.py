"""The server's commands on the `runctl` command line: `serve`, `keys`, `db` and `prune`.

The client distribution owns the `runctl` command and knows nothing of the server; it finds these
through the `runctl.commands` entry point group (this package's pyproject), so they appear only where
the server is installed. Modules here import the server lazily, inside the commands.
"""

from __future__ import annotations

import typer

from runctl_server.cli import db, keys, serve


def register(app: typer.Typer) -> None:
    """Add the server's commands to the `runctl` command."""
    app.command("serve")(serve.serve)
    app.add_typer(keys.keys_app)
    db.register(app)
