"""Resume credentials: a rotated-out webhook secret that still works for an overlap, and the
server's keys (the one that signs resume links, made at first start).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Time = sa.Float(precision=53)


def upgrade() -> None:
    with op.batch_alter_table("workflows") as table:
        table.add_column(sa.Column("previous_secret_hash", sa.String(128), nullable=True))
        table.add_column(sa.Column("previous_secret_until", Time, nullable=True))
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
    with op.batch_alter_table("workflows") as table:
        table.drop_column("previous_secret_until")
        table.drop_column("previous_secret_hash")
