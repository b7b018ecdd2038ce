from pathlib import Path

from core.access import Sender
from core.db import migrate
from core.db.session import make_engine, make_session_factory
from core.health import health
from core.settings import Settings
from core.storage import DatabaseBlobs
from core.submissions import MAX_ATTEMPTS, Received, record_submission, start_processing


def test_a_process_that_reaches_everything_is_healthy(postgres_url: str, redis_url: str) -> None:
    migrate.upgrade(postgres_url)
    settings = Settings(database_url=postgres_url, broker_url=redis_url,
                        storage_backend="database")
    sessions = make_session_factory(make_engine(postgres_url))
    checks = health(settings, sessions, DatabaseBlobs(sessions))
    assert [(c.name, c.ok) for c in checks] == [("database", True), ("broker", True),
                                                ("storage", True), ("storage quota", True),
                                                ("given up", True)]


def test_a_store_at_its_quota_is_reported_with_what_to_do(postgres_url: str,
                                                          redis_url: str) -> None:
    migrate.upgrade(postgres_url)
    settings = Settings(database_url=postgres_url, broker_url=redis_url,
                        storage_quota_bytes=1_000_000)
    sessions = make_session_factory(make_engine(postgres_url))
    record_submission(sessions, Sender(5, None, None), Received(5, 1, "document", None, "a.tif"),
                      reply_message_id=None, sha256="a" * 64, stored_bytes=1_200_000)
    [quota] = [c for c in health(settings, sessions, DatabaseBlobs(sessions))
               if c.name == "storage quota"]
    assert not quota.ok
    assert quota.detail.startswith("1 MB of 1 MB (120%)") and "hematovision purge" in quota.detail


def test_an_unreachable_broker_and_database_are_named(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    settings = Settings(database_url=url, broker_url="redis://127.0.0.1:1/0",
                        storage_backend="database")
    sessions = make_session_factory(make_engine(url))
    checks = {c.name: c for c in health(settings, sessions, DatabaseBlobs(sessions), timeout=1)}
    assert not checks["database"].ok and not checks["broker"].ok and not checks["storage"].ok
    assert "OperationalError" in checks["database"].detail


def test_photos_given_up_are_listed_for_an_admin_without_failing_the_check(
    postgres_url: str, redis_url: str,
) -> None:
    migrate.upgrade(postgres_url)
    settings = Settings(database_url=postgres_url, broker_url=redis_url)
    sessions = make_session_factory(make_engine(postgres_url))
    outcome = record_submission(sessions, Sender(6, None, None),
                                Received(6, 1, "photo", None, None),
                                reply_message_id=None, sha256="b" * 64)
    for _ in range(MAX_ATTEMPTS + 1):  # each start as a worker that then died
        start_processing(sessions, outcome.submission_id)
    [gave_up] = [c for c in health(settings, sessions, DatabaseBlobs(sessions))
                 if c.name == "given up"]
    assert gave_up.ok and f"ids: {outcome.submission_id}" in gave_up.detail
