"""Result notifications: sent on commit, never on rollback, and a listener that reconnects."""

import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from core.db.notify import ResultListener, announce_result, libpq_url
from core.db.session import make_engine, make_session_factory, transaction


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.changed = threading.Condition()

    def __call__(self) -> None:
        with self.changed:
            self.calls += 1
            self.changed.notify_all()

    def wait_for(self, calls: int, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.calls >= calls, timeout)


@pytest.fixture
def listening(postgres_url: str) -> Iterator[tuple[str, ResultListener, Counter]]:
    counter = Counter()
    listener = ResultListener(postgres_url, counter, retry_seconds=0.2).start()
    assert listener.listening.wait(10)
    assert counter.wait_for(1)  # the catch-up call made on every (re)connection
    yield postgres_url, listener, counter
    listener.stop()


def test_a_committed_result_wakes_the_listener(
        listening: tuple[str, ResultListener, Counter]) -> None:
    url, _listener, counter = listening
    with transaction(make_session_factory(make_engine(url))) as session:
        announce_result(session)
    assert counter.wait_for(2)


def test_a_rolled_back_result_wakes_nobody(listening: tuple[str, ResultListener, Counter]) -> None:
    url, _listener, counter = listening
    sessions = make_session_factory(make_engine(url))
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        announce_result(session)
        raise RuntimeError("the worker failed before commit")
    with transaction(sessions) as session:
        announce_result(session)
    assert counter.wait_for(2)
    assert not counter.wait_for(3, timeout=1.0)


def test_the_listener_comes_back_after_its_connection_is_killed(
        listening: tuple[str, ResultListener, Counter]) -> None:
    url, listener, counter = listening
    with psycopg.connect(libpq_url(url) or "", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE query LIKE 'LISTEN%' AND datname = current_database()")
    assert counter.wait_for(2)  # reconnected: the catch-up call again
    assert listener.listening.wait(10)
    with transaction(make_session_factory(make_engine(url))) as session:
        announce_result(session)
    assert counter.wait_for(3)


def test_sqlite_has_no_channel_and_announcing_is_harmless(sqlite_url: str) -> None:
    assert libpq_url(sqlite_url) is None
    engine = make_engine(sqlite_url)
    with transaction(make_session_factory(engine)) as session:
        announce_result(session)
        assert session.execute(text("SELECT 1")).scalar() == 1
    with pytest.raises(ValueError, match="PostgreSQL"):
        ResultListener(sqlite_url, lambda: None)
