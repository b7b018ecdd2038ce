"""Database calls from the bot that outlast a short outage instead of dropping the update."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

from core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = (OperationalError, InterfaceError)


async def with_db_retry(call: Callable[[], T], settings: Settings,
                        on_slow: Callable[[], Awaitable[None]] | None = None) -> T:
    """Run ``call`` in a thread, retrying transient database errors with backoff.

    After ``db_slow_notice_seconds`` of failures ``on_slow`` runs once (to tell the user);
    after ``db_retry_seconds`` the last error is raised.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    delay, told = 0.25, False
    while True:
        try:
            return await asyncio.to_thread(call)
        except TRANSIENT as exc:
            waited = loop.time() - started
            if waited + delay > settings.db_retry_seconds:
                raise
            log.warning("database unavailable (%s); retrying in %.1f s", type(exc).__name__,
                        delay)
            if not told and on_slow is not None and waited >= settings.db_slow_notice_seconds:
                told = True
                await on_slow()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)
