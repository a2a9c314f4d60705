"""influence rankings

Revision ID: e8b1f4c2d7a6
Revises:
Create Date: 2026-11-24 02:35:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import budding.core.db

revision = "e8b1f4c2d7a6"
down_revision = None
branch_labels = ("influence",)
depends_on = "937836b6c8e2"


def upgrade() -> None:
    op.create_table(
        "influence_rankings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("computed_at", budding.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", budding.core.db.JSONType(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_influence_rankings_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_influence_rankings")),
        sa.UniqueConstraint("program_id", "key", name=op.f("uq_influence_rankings_program_id_key")),
    )


def downgrade() -> None:
    op.drop_table("influence_rankings")
