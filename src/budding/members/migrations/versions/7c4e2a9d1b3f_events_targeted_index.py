"""events: partial index on the events that have a target

Revision ID: 7c4e2a9d1b3f
Revises: 5af525ddfa35
Create Date: 2026-11-24 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7c4e2a9d1b3f"
down_revision = "5af525ddfa35"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_program_targeted",
        "events",
        ["program_id", "id"],
        unique=False,
        sqlite_where=sa.text("target_member_id IS NOT NULL"),
        postgresql_where=sa.text("target_member_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_program_targeted", table_name="events")
