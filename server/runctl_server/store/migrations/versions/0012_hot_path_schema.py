"""The tables every run writes cost less to write:

- Indexes leave out the rows they can never find: most node states never wake, most events and runs
  belong to no batch, and a running run has not ended. Every run inserts ten or more node states and
  twenty or more events, so each full index cost an entry per row for nothing; what uses these indexes
  (due timers, a batch's events and runs, retention) asks only for non-null values.
- A run that ends lets go of its lease (runs ended before this revision do so here): only active runs
  are in the lease index, and a draining replica releases its active runs, not every run it ever drove.
- Node states no longer reference their run by a foreign key: the check ran a query for every node
  state written (about a tenth of what PostgreSQL spent on a run). Only a run's driver writes its node
  states, and the two places that remove runs (retention and clearing a batch) remove their node
  states first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# (index, table, columns, the column that is null in the rows left out)
_PARTIAL = (
    ("ix_node_states_wake_at", "node_states", ["wake_at"], "wake_at"),
    ("ix_events_batch", "events", ["batch_id", "sequence"], "batch_id"),
    ("ix_executions_batch_id", "executions", ["batch_id"], "batch_id"),
    ("ix_executions_ended_at", "executions", ["ended_at"], "ended_at"),
    ("ix_executions_lease_owner", "executions", ["lease_owner"], "lease_owner"),
)

# SQLite names no foreign key; batch mode needs a name to drop it by.
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _create_partial(index: str, table: str, columns: list[str], column: str) -> None:
    condition = sa.text(f"{column} IS NOT NULL")
    op.create_index(index, table, columns, postgresql_where=condition, sqlite_where=condition)


def upgrade() -> None:
    # Written to be replayed safely: a database whose revision was set back (to run an older data
    # migration again) may have these already.
    inspector = sa.inspect(op.get_bind())
    op.execute(
        "UPDATE executions SET lease_owner = NULL"
        " WHERE lease_owner IS NOT NULL AND status NOT IN ('queued', 'running', 'paused')"
    )
    for index, table, columns, column in _PARTIAL:
        if index in {found["name"] for found in inspector.get_indexes(table)}:
            op.drop_index(index, table_name=table)
        _create_partial(index, table, columns, column)
    for key in inspector.get_foreign_keys("node_states"):
        if key["referred_table"] != "executions":
            continue
        if op.get_bind().dialect.name == "postgresql" and key["name"]:
            op.drop_constraint(key["name"], "node_states", type_="foreignkey")
            continue
        # SQLite: an unnamed key is named by the convention, so that batch mode can find it.
        name = key["name"] or _NAMING["fk"] % {
            "table_name": "node_states",
            "column_0_name": "execution_id",
            "referred_table_name": "executions",
        }
        with op.batch_alter_table("node_states", naming_convention=_NAMING) as batch:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("node_states") as batch:
        batch.create_foreign_key(
            "node_states_execution_id_fkey", "executions", ["execution_id"], ["id"], ondelete="CASCADE"
        )
    for index, table, columns, _column in _PARTIAL:
        op.drop_index(index, table_name=table)
        op.create_index(index, table, columns)
