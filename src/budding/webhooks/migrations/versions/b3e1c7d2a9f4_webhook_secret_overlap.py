"""webhook secret overlap: the replaced secret keeps signing for a while

Revision ID: b3e1c7d2a9f4
Revises: fca966e00fa2
Create Date: 2026-11-23 04:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import budding.core.db

revision = "b3e1c7d2a9f4"
down_revision = "fca966e00fa2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_secret_expires_at",
                budding.core.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
