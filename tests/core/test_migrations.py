"""The migrations build the schema the models declare: a column, index or constraint added
to a model without its migration (or the other way round) would differ only on the
databases that were upgraded, never on a fresh test database built from the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from budding.core.db import Base, get_engine, import_models


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    import_models()
    with get_engine().connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
