"""The stand-in refuses what Telegram refuses, as an unmodified python-telegram-bot sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter

from devkit.standin import FloodLimits, StandInThread

CHAT = 4242


@pytest.fixture(scope="module")
def standin() -> Iterator[StandInThread]:
    running = StandInThread().start()
    yield running
    running.stop()


def call(standin: StandInThread, method: str, *args: object, **kwargs: object) -> object:
    async def run() -> object:
        bot = Bot(standin.token, base_url=standin.base_url, base_file_url=standin.file_url)
        async with bot:
            return await getattr(bot, method)(*args, **kwargs)
    return asyncio.run(run())


def test_a_text_of_4096_utf16_units_is_sent_and_one_more_is_refused(
        standin: StandInThread) -> None:
    call(standin, "send_message", CHAT, "a" * 4096)
    call(standin, "send_message", CHAT, "🔬" * 2048)  # two UTF-16 units each
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        call(standin, "send_message", CHAT, "🔬" * 2048 + "a")


def test_a_caption_over_1024_units_is_refused(standin: StandInThread) -> None:
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        call(standin, "send_document", CHAT, b"x" * 10, filename="a.csv", caption="c" * 1025)


def test_callback_data_over_64_bytes_is_refused(standin: StandInThread) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        call(standin, "send_message", CHAT, "choose", reply_markup=markup)


def test_files_over_20_mb_cannot_be_fetched(standin: StandInThread) -> None:
    big = standin.send_document(CHAT, b"\0" * (20 * 1024 * 1024 + 1), "scan.tif", "image/tiff")
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        call(standin, "get_file", big["document"]["file_id"])


def test_flood_control_refuses_a_burst_to_one_chat_with_retry_after(
        standin: StandInThread) -> None:
    standin.api.state.flood = FloodLimits(chat_burst=3, chat_per_second=1)
    try:
        for number in range(3):
            call(standin, "send_message", CHAT + 1, f"burst {number}")
        with pytest.raises(RetryAfter) as refused:
            call(standin, "send_message", CHAT + 1, "one too many")
        assert refused.value.retry_after in (1, timedelta(seconds=1))
        call(standin, "send_message", CHAT + 2, "another chat is not held up")
    finally:
        standin.api.state.flood = None
