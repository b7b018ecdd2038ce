"""The bot's own flood control: sends paced per chat, a 429 waited out by its chat alone."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.pacing import Bucket, ChatPacer, PacingLimits

FAST = PacingLimits(private_burst=2, private_per_second=20, group_burst=1,
                    group_per_second=5, global_per_second=1000, max_wait=2.0, max_retries=2)


class Telegram:
    """Records when each send reached it; answers 429 to the chats told to refuse."""

    def __init__(self) -> None:
        self.sent: list[tuple[int | None, float]] = []
        self.refuse: dict[int, int] = {}  # chat -> 429s still to answer

    async def call(self, endpoint: str, data: dict[str, Any]) -> bool:
        chat = data.get("chat_id")
        if isinstance(chat, int) and self.refuse.get(chat, 0) > 0:
            self.refuse[chat] -= 1
            raise RetryAfter(1)
        self.sent.append((chat, time.monotonic()))
        return True


def runs(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Each test runs on an event loop of its own (the suite has no asyncio plugin)."""
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())
    return run


async def _send(pacer: ChatPacer, telegram: Telegram, chat: int | None,
                wait: float | None = None) -> Any:
    data = {} if chat is None else {"chat_id": chat}
    return await pacer.process_request(telegram.call, ("sendMessage", data), {}, "sendMessage",
                                       data, wait)


def test_a_bucket_in_debt_spaces_reservations_one_interval_apart() -> None:
    bucket = Bucket(capacity=2, rate=2, tokens=2, at=0.0)
    waits = []
    for _ in range(5):
        waits.append(bucket.wait(0.0))
        bucket.take(0.0)
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]
    assert bucket.wait(10.0) == 0.0  # refilled, never above its capacity
    bucket.take(10.0)
    bucket.take(10.0)
    assert bucket.wait(10.0) == 0.5


@runs
async def test_a_burst_to_one_chat_goes_out_paced_after_its_allowance() -> None:
    pacer, telegram = ChatPacer(FAST), Telegram()
    started = time.monotonic()
    await asyncio.gather(*(_send(pacer, telegram, 1) for _ in range(6)))
    offsets = sorted(at - started for _, at in telegram.sent)
    assert len(offsets) == 6
    assert offsets[1] < 0.03  # the burst allowance goes at once
    assert offsets[5] == pytest.approx(4 / 20, abs=0.04)  # then one every 1/20 s


@runs
async def test_a_group_is_paced_more_slowly_than_a_private_chat() -> None:
    pacer, telegram = ChatPacer(FAST), Telegram()
    started = time.monotonic()
    await asyncio.gather(*(_send(pacer, telegram, -100) for _ in range(3)))
    assert max(at for _, at in telegram.sent) - started == pytest.approx(2 / 5, abs=0.05)


@runs
async def test_a_429_pauses_only_its_own_chat_and_is_retried_for_the_caller() -> None:
    pacer, telegram = ChatPacer(FAST), Telegram()
    telegram.refuse[1] = 1
    started = time.monotonic()
    assert await asyncio.gather(_send(pacer, telegram, 1), _send(pacer, telegram, 2)) \
        == [True, True]
    sent = dict(telegram.sent)
    assert sent[2] - started < 0.1  # the other chat never waited
    assert sent[1] - started == pytest.approx(1.0, abs=0.1)  # after Telegram's retry_after
    # Later sends to the paused chat wait for it too, without meeting another 429.
    telegram.refuse[1] = 0


@runs
async def test_a_send_that_would_wait_longer_than_its_caller_allows_is_not_made() -> None:
    pacer, telegram = ChatPacer(FAST), Telegram()
    for _ in range(2):
        await _send(pacer, telegram, 1)
    with pytest.raises(RetryAfter):
        await _send(pacer, telegram, 1, wait=0.0)  # the outbox's way: defer, do not wait
    assert len(telegram.sent) == 2
    assert await _send(pacer, telegram, 1) is True  # a reply may wait its turn


@runs
async def test_a_chat_that_keeps_refusing_is_given_up_after_the_retries() -> None:
    pacer, telegram = ChatPacer(FAST), Telegram()
    telegram.refuse[1] = 10
    with pytest.raises(RetryAfter):
        await _send(pacer, telegram, 1)
    assert telegram.refuse[1] == 10 - (FAST.max_retries + 1)


@runs
async def test_requests_to_no_chat_are_not_paced() -> None:
    pacer, telegram = ChatPacer(FAST), Telegram()
    started = time.monotonic()
    await asyncio.gather(*(_send(pacer, telegram, None) for _ in range(10)))
    assert max(at for _, at in telegram.sent) - started < 0.05
