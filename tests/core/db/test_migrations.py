"""Migrations build the schema from nothing, match the models exactly, and tear down cleanly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from core.db import migrate
from core.db.models import Base
from core.db.session import make_engine

TABLES = {"users", "cases", "submissions", "cell_results", "model_versions"}


def test_upgrade_creates_every_table(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_autogenerate_finds_no_difference_from_the_models(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_downgrade_to_base_removes_the_schema(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.downgrade(database_url, "base")
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(database_url)  # and back up again
