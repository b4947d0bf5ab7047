"""Bounded times: values the older, looser rules let in are brought within the bounds definitions now
have, so that no stored value can make a read fail or a stored definition fail to load.

- wait and approval `timeoutSeconds` above ten years become ten years, an http `timeoutSeconds` above a
  day becomes a day, a delay `until` after ten years from now becomes ten years from now (or 1970 when
  before it), in every stored workflow version and inline run document (loop bodies included);
- timer wake-ups and pause point expiries beyond ten years from now (or not finite) become ten years
  from now.

The rules are written out here rather than imported: a migration must keep meaning what it meant.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MAX_WAIT_SECONDS = 10 * 366 * 24 * 3600.0
MAX_HTTP_TIMEOUT_SECONDS = 24 * 3600.0
BATCH = 500


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bound_node(node: dict[str, Any], latest: datetime) -> bool:
    """Clamp one node's config in place; answers whether anything changed."""
    config = node.get("config")
    if not isinstance(config, dict):
        return False
    changed = False
    kind = node.get("type")
    timeout = config.get("timeoutSeconds")
    cap = {"wait": MAX_WAIT_SECONDS, "approval": MAX_WAIT_SECONDS, "http": MAX_HTTP_TIMEOUT_SECONDS}.get(
        str(kind)
    )
    if cap is not None and isinstance(timeout, int | float) and _number(timeout) and not timeout <= cap:
        config["timeoutSeconds"] = cap
        changed = True
    if kind == "delay":
        seconds = config.get("seconds")
        if isinstance(seconds, int | float) and _number(seconds) and not seconds <= MAX_WAIT_SECONDS:
            config["seconds"] = MAX_WAIT_SECONDS
            changed = True
        until = config.get("until")
        if isinstance(until, str) and "{{" not in until:
            try:
                moment = datetime.fromisoformat(until)
                if moment.tzinfo is not None and moment > latest:
                    config["until"] = latest.isoformat()
                    changed = True
                elif moment.tzinfo is not None and moment.year < 1970:
                    config["until"] = "1970-01-01T00:00:00+00:00"
                    changed = True
            except (ValueError, OverflowError):
                pass  # not a time: refused when the node runs, as before
    return changed


def bound_document(document: Any, latest: datetime) -> bool:
    """Clamp every node of a workflow document (loop bodies included) in place."""
    if not isinstance(document, dict):
        return False
    changed = False
    for node in document.get("nodes") or []:
        if isinstance(node, dict):
            changed = _bound_node(node, latest) or changed
            changed = bound_document(node.get("body"), latest) or changed
    return changed


def _rewrite_documents(table: sa.TableClause, key: list[str], latest: datetime) -> None:
    bind = op.get_bind()
    columns = [table.c[name] for name in key]
    last: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*columns, table.c.document).order_by(*columns).limit(BATCH)
        if last is not None:
            query = query.where(sa.tuple_(*columns) > sa.tuple_(*last))
        rows = bind.execute(query).all()
        for row in rows:
            text = row[-1]
            if not text:
                continue
            try:
                document = json.loads(text)
            except ValueError:
                continue
            if bound_document(document, latest):
                bind.execute(
                    table.update()
                    .where(*(column == value for column, value in zip(columns, row[:-1], strict=True)))
                    .values(document=json.dumps(document, separators=(",", ":")))
                )
        if len(rows) < BATCH:
            return
        last = tuple(rows[-1][:-1])


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


def upgrade() -> None:
    latest = datetime.now(UTC) + timedelta(seconds=MAX_WAIT_SECONDS)
    _rewrite_documents(
        _table("workflow_versions", "workflow_id", "version", "document"), ["workflow_id", "version"], latest
    )
    _rewrite_documents(_table("executions", "id", "document"), ["id"], latest)
    cap = time.time() + MAX_WAIT_SECONDS
    bind = op.get_bind()
    for table in (_table("node_states", "wake_at"), _table("pause_points", "expires_at")):
        column = next(iter(table.c))
        # NaN and infinities compare greater than any number in PostgreSQL; SQLite stores NaN as NULL.
        bind.execute(table.update().where(column > cap).values({column.name: cap}))
        # Before 1970 (or minus infinity): due long ago, so due now.
        bind.execute(table.update().where(column < 0).values({column.name: 0}))


def downgrade() -> None:
    """Nothing to undo: the clamped values were within the old rules too."""
