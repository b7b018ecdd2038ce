"""Telegram's flood limits kept by the bot itself: every send is paced per chat and overall,
and a 429 pauses only the chat it names.

python-telegram-bot's ``AIORateLimiter`` stops every request of the bot while any one chat
waits out its ``retry_after``; a busy laboratory would hold up the others. This limiter keeps
one token bucket per chat (Telegram: about one message a second in a private chat, twenty a
minute in a group) and one for the bot (about thirty a second). A send that would have to wait
longer than its caller allows is not made: the caller gets ``RetryAfter`` at once and decides
(the outbox defers that result; a handler's reply waits up to ``max_wait``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)
JSONDict = dict[str, Any]


@dataclass
class Bucket:
    """A token bucket that takes reservations: a send due later than now leaves it in debt,
    so sends queued on one chat go out in order, ``1 / rate`` apart."""

    capacity: float
    rate: float  # tokens per second
    tokens: float
    at: float

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self, now: float) -> float:
        """Seconds until a token would be free."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def hold(self, now: float, seconds: float) -> None:
        """Telegram said 429: the next token only after ``seconds``, for every sender."""
        self._refill(now)
        self.tokens = min(self.tokens, 1 - seconds * self.rate)


@dataclass(frozen=True)
class PacingLimits:
    """Below Telegram's published limits, so the bot rarely meets a 429 at all."""

    private_burst: float = 3.0
    private_per_second: float = 1.0
    group_burst: float = 3.0
    group_per_second: float = 20 / 60
    global_per_second: float = 25.0
    max_wait: float = 10.0  # a handler's reply waits at most this long for its turn
    max_retries: int = 3  # 429s retried per request before the caller sees one


def retry_seconds(exc: RetryAfter) -> float:
    wait: int | timedelta = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def _refusal(seconds: float) -> RetryAfter:
    return RetryAfter(max(1, math.ceil(seconds)))


class ChatPacer(BaseRateLimiter[float]):
    """``rate_limit_args``, when given, is how many seconds this request may wait for its turn
    (the outbox passes a short one: it would rather defer one chat than hold the others)."""

    def __init__(self, limits: PacingLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or PacingLimits()
        self._clock = clock
        self._chats: dict[int | str, Bucket] = {}
        self._overall = Bucket(self.limits.global_per_second, self.limits.global_per_second,
                               self.limits.global_per_second, clock())

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def _bucket(self, chat_id: int | str, now: float) -> Bucket:
        if (bucket := self._chats.get(chat_id)) is None:
            # Negative ids are groups and channels; "@name" is a public channel.
            private = isinstance(chat_id, int) and chat_id > 0
            burst = self.limits.private_burst if private else self.limits.group_burst
            rate = self.limits.private_per_second if private else self.limits.group_per_second
            bucket = self._chats[chat_id] = Bucket(burst, rate, burst, now)
        return bucket

    def _reserve(self, chat_id: int | str | None, max_wait: float) -> float:
        """Book this send's turn; returns how long to sleep before it, or raises RetryAfter
        (booking nothing) when that is longer than ``max_wait``."""
        now = self._clock()
        chat = None if chat_id is None else self._bucket(chat_id, now)
        wait = max(self._overall.wait(now), chat.wait(now) if chat else 0.0)
        if wait > max_wait:
            raise _refusal(wait)
        self._overall.take(now)
        if chat is not None:
            chat.take(now)
        return wait

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: float | None,
    ) -> bool | JSONDict | list[JSONDict]:
        max_wait = self.limits.max_wait if rate_limit_args is None else rate_limit_args
        raw_chat = data.get("chat_id")
        chat_id = raw_chat if isinstance(raw_chat, int | str) else None
        paced = chat_id is not None  # sends to a chat; getFile, answers and the like are not
        for attempt in range(self.limits.max_retries + 1):
            if paced:
                wait = self._reserve(chat_id, max_wait)
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                if chat_id is not None:
                    now = self._clock()
                    self._bucket(chat_id, now).hold(now, seconds)
                if attempt == self.limits.max_retries or seconds > max_wait:
                    raise
                log.info("%s to chat %s: flood control, retrying in %.0f s", endpoint, chat_id,
                         seconds)
                if not paced:
                    await asyncio.sleep(seconds)
        raise AssertionError("unreachable")
