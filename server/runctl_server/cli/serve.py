"""`runctl serve`: start the server (gRPC and HTTP on one event loop)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated

import typer


def serve(
    db_url: Annotated[
        str | None,
        typer.Option(help="Database URL (sqlite:///path or postgresql://...). Env: RUNCTL_DB_URL."),
    ] = None,
    grpc_addr: Annotated[str | None, typer.Option(help="gRPC HOST:PORT. Env: RUNCTL_GRPC_ADDR.")] = None,
    http_addr: Annotated[str | None, typer.Option(help="HTTP HOST:PORT. Env: RUNCTL_HTTP_ADDR.")] = None,
    workflows_dir: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder batches may read workflow files from (repeatable). Env: RUNCTL_WORKFLOWS_DIR."
        ),
    ] = None,
    public_base_url: Annotated[
        str | None,
        typer.Option(help="Public URL of the HTTP server, for links. Env: RUNCTL_PUBLIC_BASE_URL."),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate chain: serve gRPC and HTTP over TLS. Env: RUNCTL_TLS_CERT."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="PEM private key of --tls-cert. Env: RUNCTL_TLS_KEY.")
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(help="Log lines as text or json (one object per line). Env: RUNCTL_LOG_FORMAT."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING, ERROR or CRITICAL. Env: RUNCTL_LOG_LEVEL."),
    ] = None,
) -> None:
    """Start the runctl server (gRPC and HTTP on one event loop)."""
    from runctl_server.app import StartupError
    from runctl_server.app import serve as run_server
    from runctl_server.observe import logs
    from runctl_server.settings import Address, Settings, SettingsError

    json_logs = (log_format or os.environ.get("RUNCTL_LOG_FORMAT", "")).strip() == "json"
    try:
        settings = Settings.from_env(
            db_url=db_url,
            grpc_addr=Address.parse(grpc_addr, "--grpc-addr") if grpc_addr else None,
            http_addr=Address.parse(http_addr, "--http-addr") if http_addr else None,
            workflows_dirs=tuple(p.expanduser().resolve() for p in workflows_dir) if workflows_dir else None,
            public_base_url=public_base_url,
            tls_cert_file=tls_cert.expanduser() if tls_cert else None,
            tls_key_file=tls_key.expanduser() if tls_key else None,
            log_format=log_format,
            log_level=log_level.upper() if log_level else None,
        )
        logs.configure(settings.log_format, settings.log_level)
        asyncio.run(run_server(settings))
    except (SettingsError, StartupError) as exc:
        if json_logs:  # every line of a JSON-format server is JSON, this last one too
            logs.configure("json", "ERROR")
            logging.getLogger("runctl").error("runctl cannot start: %s", exc)
        else:
            typer.secho(f"runctl: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
