"""webhook attempt lease: one attempt at a delivery in flight at a time

Revision ID: c5d2e8a1f3b7
Revises: b3e1c7d2a9f4
Create Date: 2026-11-23 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import budding.core.db

revision = "c5d2e8a1f3b7"
down_revision = "b3e1c7d2a9f4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sending_until", budding.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("sending_until")
