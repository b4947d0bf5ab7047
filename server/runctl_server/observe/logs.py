"""Server logging: `text` for a person at a terminal, `json` (one object per line) for log pipelines.

JSON lines carry time, level, logger and message, and where known the request id, execution id,
workflow id, workspace, key id and trace id. Every logger of the process goes through the one handler
(uvicorn's, alembic's and warnings included), so a JSON-format server writes nothing but JSON lines.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from runctl_server.observe import tracing
from runctl_server.observe.calls import current_call, current_run

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ACCESS_LOGGER = "runctl.access"


class ContextFilter(logging.Filter):
    """Adds what is known of the current call and run to the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        call = current_call()
        if call is not None:
            record.request_id = call.request_id
            if call.workspace is not None:
                record.workspace = call.workspace
            if call.key_id is not None:
                record.key_id = call.key_id
            if call.execution_id:
                record.execution_id = call.execution_id
            if call.workflow_id:
                record.workflow_id = call.workflow_id
        run = current_run()
        if run is not None:
            record.execution_id = run.execution_id
            if run.workflow_id:
                record.workflow_id = run.workflow_id
            record.workspace = run.workspace
        trace_id = tracing.current_trace_id()
        if trace_id is not None:
            record.trace_id = trace_id
        return True


class _Json(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_formatter() -> logging.Formatter:
    return _Json(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


class _Text(logging.Formatter):
    """The plain format, with the ids a reader needs to follow one call or run through the log."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{name}={value}"
            for name in ("request_id", "execution_id", "trace_id")
            if (value := getattr(record, name, None))
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


def configure(log_format: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route every logger of the process through one handler in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    formatter: logging.Formatter = (
        json_formatter() if log_format == "json" else _Text("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    # Libraries that install handlers of their own would write lines in another format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "py.warnings"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True


def access(fields: dict[str, Any], message: str) -> None:
    """One access log line (a gRPC call or an HTTP request); `fields` become JSON fields."""
    logging.getLogger(ACCESS_LOGGER).info(message, extra=fields)
