"""What the handlers need, built once from the settings and handed to them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.db.session import SessionFactory, make_engine, make_session_factory
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.storage import ImageStore, blob_store
from core.tasks import TaskQueue


@dataclass
class AlbumAck:
    started: float  # monotonic seconds
    message_id: asyncio.Future[int | None]


@dataclass
class BotServices:
    settings: Settings
    sessions: SessionFactory
    store: ImageStore
    queue: TaskQueue
    messages_limit: RateLimiter
    photos_limit: RateLimiter
    # Set when a submission finishes in this process, so delivery need not wait for its poll.
    wake_delivery: asyncio.Event = field(default_factory=asyncio.Event)
    # Decoding a 60 MP upload takes about 0.5 GB. Two threads of their own do all of it: a
    # semaphore over the shared thread pool bounded how many ran at once, but each pool thread
    # kept its own malloc arena full of freed image memory (5.9 GB for 50 such documents,
    # BENCHMARKS.md). Other users' commands never wait on these threads.
    decoder: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="decode"))
    # When each user was last told the queue is full (monotonic seconds): once per burst.
    told_busy: dict[int, float] = field(default_factory=dict)
    # When each user was last given the "send it as a file" tip (monotonic seconds).
    told_tip: dict[int, float] = field(default_factory=dict)
    # One acknowledgement per album: its photos arrive as separate updates handled side by
    # side; the first sends it, the others wait for its message id (see bot.intake).
    album_acks: dict[tuple[int, str], AlbumAck] = field(default_factory=dict)
    # Album photos received and not yet recorded (downloading, being checked), per album: the
    # outbox holds an album back while any is, however long its download takes, so its wait
    # for photos still on their way (``core.submissions.ALBUM_SETTLE``) need only cover
    # Telegram's delivery.
    albums_arriving: Counter[tuple[int, str]] = field(default_factory=Counter)

    @contextmanager
    def receiving(self, chat_id: int, media_group_id: str | None) -> Iterator[None]:
        """While a photo is received: counted against its album, if it has one."""
        if media_group_id is None:
            yield
            return
        album = (chat_id, media_group_id)
        self.albums_arriving[album] += 1
        try:
            yield
        finally:
            self.albums_arriving[album] -= 1
            if self.albums_arriving[album] <= 0:
                del self.albums_arriving[album]

    def album_arriving(self, chat_id: int, media_group_id: str | None) -> bool:
        return media_group_id is not None and self.albums_arriving[chat_id, media_group_id] > 0

    @classmethod
    def from_settings(cls, settings: Settings) -> BotServices:
        settings.ensure_dirs()
        sessions = make_session_factory(make_engine(settings.resolved_database_url))
        return cls(
            settings=settings,
            sessions=sessions,
            store=ImageStore(blob_store(settings, sessions)),
            queue=TaskQueue(settings),
            messages_limit=RateLimiter(settings.max_messages_per_minute, 60.0),
            photos_limit=RateLimiter(settings.max_photos_per_minute, 60.0),
        )
