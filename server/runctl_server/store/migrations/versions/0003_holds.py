"""Operator holds on runs: a held run starts no new node until released.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("hold", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.drop_column("hold")
