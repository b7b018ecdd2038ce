"""Telling the bot that a result is ready, through the database it already shares with workers.

On PostgreSQL the worker's transaction carries a ``NOTIFY`` that the server delivers when it
commits, and the bot, which keeps one connection listening, sends the reply at once instead of at
its next poll (on average half a poll interval later). SQLite has no such channel; there, and
whenever the listening connection is down, the bot's poll delivers the result as before.
A retraining job's progress reports and its end wake the bot the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
CHANNEL = "hematovision_results"


def announce_result(session: Session) -> None:
    """Notify listeners when this session's transaction commits (nothing if it rolls back)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


def libpq_url(database_url: str) -> str | None:
    """The libpq form of a SQLAlchemy PostgreSQL URL; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ResultListener:
    """A thread that calls ``on_result`` for each notification, reconnecting after failures."""

    def __init__(self, database_url: str, on_result: Callable[[], None],
                 retry_seconds: float = 1.0) -> None:
        url = libpq_url(database_url)
        if url is None:
            raise ValueError("result notifications need PostgreSQL")
        self._url = url
        self._on_result = on_result
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="result-listener", daemon=True)
        self.listening = threading.Event()  # set while a connection is listening

    def start(self) -> ResultListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("result listener disconnected (%s); polling covers until it is back",
                            exc)
            finally:
                self.listening.clear()
            self._stop.wait(self._retry_seconds)

    def _listen(self) -> None:
        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            # Results that committed while no connection listened are found by the poll.
            self._on_result()
            while not self._stop.is_set():
                # A short timeout lets the thread notice a stop request.
                for _notice in connection.notifies(timeout=1.0):
                    self._on_result()
