"""portal session version

Revision ID: 5af525ddfa35
Revises: 401e61dfb9dd
Create Date: 2026-11-22 22:15:13.745934
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5af525ddfa35"
down_revision = "401e61dfb9dd"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("session_version")
