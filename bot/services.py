"""What the handlers need, built once from the settings and handed to them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.db.session import SessionFactory, make_engine, make_session_factory
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.storage import ImageStore, blob_store
from core.tasks import TaskQueue


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
    # Decoding a 60 MP upload takes about 0.5 GB: at most this many at once, whatever the
    # number of updates in flight, so a flood of large documents cannot exhaust the bot's
    # memory; other users' commands never wait on it.
    decode_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    # When each user was last told the queue is full (monotonic seconds): once per burst.
    told_busy: dict[int, float] = field(default_factory=dict)

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
