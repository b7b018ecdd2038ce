from pathlib import Path

from core.db import migrate
from core.db.session import make_engine, make_session_factory
from core.health import health
from core.settings import Settings
from core.storage import DatabaseBlobs


def test_a_process_that_reaches_everything_is_healthy(postgres_url: str, redis_url: str) -> None:
    migrate.upgrade(postgres_url)
    settings = Settings(database_url=postgres_url, broker_url=redis_url,
                        storage_backend="database")
    sessions = make_session_factory(make_engine(postgres_url))
    checks = health(settings, sessions, DatabaseBlobs(sessions))
    assert [(c.name, c.ok) for c in checks] == [("database", True), ("broker", True),
                                                ("storage", True)]


def test_an_unreachable_broker_and_database_are_named(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    settings = Settings(database_url=url, broker_url="redis://127.0.0.1:1/0",
                        storage_backend="database")
    sessions = make_session_factory(make_engine(url))
    checks = {c.name: c for c in health(settings, sessions, DatabaseBlobs(sessions), timeout=1)}
    assert not checks["database"].ok and not checks["broker"].ok and not checks["storage"].ok
    assert "OperationalError" in checks["database"].detail
