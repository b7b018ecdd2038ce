"""The real stack for end-to-end tests and load benchmarks.

The Bot API stand-in in this process; the bot and workers as child processes; Redis and a
database given by URL.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.access import DEFAULT_GROUP, Sender, ensure_user, group_named
from core.db import migrate
from core.db.models import Submission
from core.db.session import SessionFactory, make_engine, make_session_factory, transaction
from core.enums import Role
from devkit.processes import Child, start_child
from devkit.standin import BotAction, StandInThread

# How the bot's refusal of a file opens (``bot.messages.refusal_text``).
REFUSED = "❌ I could not analyse this image."


def is_result(action: BotAction) -> bool:
    """A delivered analysis (not an acknowledgement, a refusal or a 'database busy' notice):
    the edited acknowledgement, or a new message where there was no acknowledgement to edit."""
    return (action.method in ("editMessageText", "sendMessage")
            and "Model:" in (action.text or ""))


@dataclass
class Stack:
    root: Path
    database_url: str
    broker_url: str
    standin: StandInThread
    sessions: SessionFactory
    env: dict[str, str]
    children: dict[str, Child] = field(default_factory=dict)
    # Each process gets its own empty HV_DATA_DIR, as if each ran on its own host.
    separate_hosts: bool = False
    _next_user: int = 1000

    def new_user(self, role: Role = Role.USER, group: str = DEFAULT_GROUP) -> int:
        """A fresh Telegram user id, so tests sharing the stack never read each other's chats.

        Unless ``role`` is pending, the user is already approved into ``group``, as an admin
        would have done: tests about something else need not replay the approval each time.
        """
        self._next_user += 1
        user_id = self._next_user
        if role is not Role.PENDING:
            with transaction(self.sessions) as session:
                user = ensure_user(session, Sender(user_id, f"user{user_id}", f"User{user_id}"))
                user.role = role
                user.group_id = group_named(session, group).id
        return user_id

    def data_dir(self, name: str) -> Path:
        """The HV_DATA_DIR process ``name`` runs with."""
        return self.root / "hosts" / name if self.separate_hosts else self.root

    def _env(self, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.env, "HV_DATA_DIR": str(self.data_dir(name)), **(extra or {})}

    def start_worker(self, name: str = "worker", training: bool = False,
                     env: dict[str, str] | None = None) -> Child:
        child = self.launch_worker(name, training, env)
        child.wait_for_log("ready.", timeout=120)
        return child

    def launch_worker(self, name: str = "worker", training: bool = False,
                      env: dict[str, str] | None = None) -> Child:
        """A worker started, not yet ready (``start_worker`` waits for it)."""
        args = ["worker", "--name", f"{name}-{uuid.uuid4().hex[:6]}@test"]
        child = start_child(name, [*args, "--training"] if training else args,
                            self._env(name, env), self.root / "logs")
        self.children[name] = child
        return child

    def start_bot(self) -> Child:
        child = start_child("bot", ["bot"], self._env("bot"), self.root / "logs")
        self.children["bot"] = child  # stopped with the stack even if it never starts
        child.wait_for_log("Application started", timeout=60)
        return child

    def stop(self, name: str) -> None:
        self.children.pop(name).stop()

    def result_for(self, user: int, timeout: float = 90) -> BotAction:
        """What carries the outcome of the user's latest upload: the edit of its
        acknowledgement, or the refusal of a file refused before any analysis."""
        edits = self.standin.wait_for(user, 1, timeout, predicate=lambda a: (
            a.method == "editMessageText" or (a.method == "sendMessage" and (
                a.text or "").startswith(REFUSED))))
        assert edits, f"no result for user {user} within {timeout} s; logs:\n{self.logs()}"
        return edits[-1]

    def results(self, user: int) -> list[BotAction]:
        """Every analysis delivered in the user's chat so far."""
        return self.standin.wait_for(user, 0, 0, is_result)

    def send_and_time(self, user: int, photos: Sequence[bytes],
                      timeout: float = 300) -> list[float]:
        """Send each photo after the previous one's result came back, as a person at the
        microscope would; returns the send-to-result latency of each."""
        latencies = []
        for number, data in enumerate(photos):
            sent = time.monotonic()
            self.standin.send_photo(user, data)
            replies = self.standin.wait_for(user, number + 1, timeout, is_result)
            if len(replies) <= number:
                raise RuntimeError(f"user {user}: photo {number + 1} unanswered")
            latencies.append(replies[number].at - sent)
        return latencies

    def send_albums_and_time(self, user: int, photos: Sequence[bytes], per_album: int,
                             timeout: float = 300) -> list[float]:
        """As :meth:`send_and_time`, the photos sent as albums of ``per_album``: each album is
        answered as one result; every photo in it gets that album's latency."""
        latencies: list[float] = []
        albums = [photos[i:i + per_album] for i in range(0, len(photos), per_album)]
        for number, album in enumerate(albums):
            sent = time.monotonic()
            self.standin.send_album(user, [("photo", data, None) for data in album])
            replies = self.standin.wait_for(user, number + 1, timeout, is_result)
            if len(replies) <= number:
                raise RuntimeError(f"user {user}: album {number + 1} unanswered")
            latencies += [replies[number].at - sent] * len(album)
        return latencies

    def submissions(self, user: int) -> list[Submission]:
        with self.sessions() as session:
            return list(session.scalars(
                select(Submission).where(Submission.chat_id == user)
                .options(selectinload(Submission.cells)).order_by(Submission.id)
            ))

    def delivered_submissions(self, user: int, timeout: float = 10) -> list[Submission]:
        """The user's submissions once each is marked delivered (marking follows the send)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.submissions(user)
            if (rows and all(r.delivered_at is not None for r in rows)) \
                    or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{c.log()[-4000:]}" for n, c in self.children.items())

    def close(self) -> None:
        # All asked at once: each takes seconds to shut down cleanly, and none waits on another.
        for child in self.children.values():
            child.ask_to_stop()
        for child in self.children.values():
            child.wait_stopped()
        self.standin.stop()
        self.sessions.kw["bind"].dispose()


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A brand-new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    name = f"hv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_stack(root: Path, database_url: str, broker_url: str,
                  extra_env: dict[str, str] | None = None,
                  separate_hosts: bool = False) -> Iterator[Stack]:
    migrate.upgrade(database_url)
    standin = StandInThread().start()
    env = {
        "HV_DATA_DIR": str(root),
        "HV_DATABASE_URL": database_url,
        "HV_BROKER_URL": broker_url,
        "HV_CLASSIFY_QUEUE": f"classify-{uuid.uuid4().hex[:8]}",
        "HV_TRAINING_QUEUE": f"training-{uuid.uuid4().hex[:8]}",
        "HV_BOT_TOKEN": standin.token,
        "HV_BOT_API_BASE_URL": standin.base_url,
        "HV_BOT_API_FILE_URL": standin.file_url,
        "HV_DELIVERY_POLL_SECONDS": "0.2",
        **(extra_env or {}),
    }
    stack = Stack(root, database_url, broker_url, standin,
                  make_session_factory(make_engine(database_url)), env,
                  separate_hosts=separate_hosts)
    try:
        # The worker loads its model while the bot starts: neither needs the other to start.
        worker = stack.launch_worker()
        stack.start_bot()
        worker.wait_for_log("ready.", timeout=120)
        yield stack
    finally:
        stack.close()
