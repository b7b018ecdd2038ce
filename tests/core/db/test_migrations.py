"""Migrations build the schema from nothing, match the models exactly, and tear down cleanly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from core.db import migrate
from core.db.models import Base
from core.db.session import make_engine

TABLES = {"users", "cases", "submissions", "cell_results", "model_versions", "groups",
          "label_reviews", "training_jobs", "audit_events"}


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


def test_existing_cases_users_and_the_active_model_survive_the_groups_migration(
    database_url: str,
) -> None:
    migrate.upgrade(database_url, "0002")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO users (id, telegram_id, created_at) VALUES (1, 42, CURRENT_TIMESTAMP)"))
        connection.execute(text(
            "INSERT INTO cases (id, owner_id, reference, created_at) "
            "VALUES (1, 1, 'OLD-1', CURRENT_TIMESTAMP)"))
        connection.execute(text(
            "INSERT INTO model_versions (id, version, sha256, path, card, is_active, created_at) "
            "VALUES (1, 'm1', 'x', 'p', '{}', true, CURRENT_TIMESTAMP)"))
    migrate.upgrade(database_url)
    with engine.connect() as connection:
        group = connection.execute(text("SELECT id FROM groups WHERE name = 'default'")).scalar()
        assert connection.execute(text("SELECT group_id FROM cases")).scalar() == group
        assert connection.execute(text("SELECT group_id, role FROM users")).one() == (
            group, "pending")
        assert connection.execute(text("SELECT status FROM model_versions")).scalar() == "active"
    engine.dispose()
