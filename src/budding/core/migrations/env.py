"""Alembic environment: one branch per capability, all applied with ``upgrade heads``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from budding.core.db import Base, import_models

import_models()
config = context.config
url = config.attributes["database_url"]


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=Base.metadata,
            render_as_batch=conn.dialect.name == "sqlite",
            include_object=config.attributes.get("include_object"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
