"""The stand-in refuses what Telegram refuses, as an unmodified python-telegram-bot sees it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.error import BadRequest, RetryAfter

from devkit.standin import ApiError, FloodLimits, StandInThread

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


def _jpeg(side: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 160)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_the_bot_sends_an_album_of_2_to_10_photos_as_one_media_group(
        standin: StandInThread) -> None:
    photos = [InputMediaPhoto(_jpeg(), caption=f"Photo {n}") for n in range(1, 4)]
    sent = call(standin, "send_media_group", CHAT + 3, photos)
    assert isinstance(sent, tuple) and len(sent) == 3
    assert len({m.media_group_id for m in sent}) == 1 and sent[0].media_group_id
    assert [m.caption for m in sent] == ["Photo 1", "Photo 2", "Photo 3"]
    for wrong in (photos[:1], [InputMediaPhoto(_jpeg()) for _ in range(11)]):
        with pytest.raises(BadRequest, match=r"(?i)wrong number of media"):
            call(standin, "send_media_group", CHAT + 3, wrong)
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        call(standin, "send_media_group", CHAT + 3,
             [InputMediaPhoto(_jpeg(), caption="c" * 1025), InputMediaPhoto(_jpeg())])


def test_a_users_album_arrives_as_one_update_per_item_sharing_a_media_group_id(
        standin: StandInThread) -> None:
    album = standin.send_album(CHAT + 4, [("photo", _jpeg(), None) for _ in range(4)])
    assert len({m["media_group_id"] for m in album}) == 1
    assert len({m["message_id"] for m in album}) == 4
    with pytest.raises(ApiError, match=r"(?i)wrong number of media"):
        standin.send_album(CHAT + 4, [("photo", _jpeg(), None)] * 11)
    with pytest.raises(ApiError, match=r"(?i)documents can't be mixed"):
        standin.send_album(CHAT + 4, [("photo", _jpeg(), None), ("document", _jpeg(), "a.jpg")])


def test_the_control_api_sends_an_album_and_returns_every_file_the_bot_sent(
        standin: StandInThread) -> None:
    import aiohttp

    chat = 4343
    base = standin.base_url.removesuffix("/bot")
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, "PNG")

    async def run() -> tuple[list[dict[str, object]], list[dict[str, object]], bytes]:
        async with aiohttp.ClientSession() as session:
            mixed = aiohttp.FormData()
            mixed.add_field("photo", png.getvalue(), filename="a.png")
            mixed.add_field("document", b"%PDF-1.4", filename="b.pdf")
            async with session.post(f"{base}/_control/users/{chat}/album", data=mixed) as reply:
                assert reply.status == 400  # Telegram's apps cannot mix them either
            form = aiohttp.FormData()
            for name in ("a.png", "b.png"):
                form.add_field("photo", png.getvalue(), filename=name)
            async with session.post(f"{base}/_control/users/{chat}/album", data=form) as reply:
                sent = await reply.json()
            bot = Bot(standin.token, base_url=standin.base_url, base_file_url=standin.file_url)
            async with bot:
                await bot.send_document(chat, b"col\n1\n", filename="case.csv")
            async with session.get(f"{base}/_control/chats/{chat}/actions") as reply:
                actions = await reply.json()
            async with session.get(f"{base}{actions[-1]['file']}") as reply:
                return sent, actions, await reply.read()

    sent, actions, data = asyncio.run(run())
    assert len(sent) == 2 and sent[0]["media_group_id"] == sent[1]["media_group_id"]
    assert "photo" in sent[0] and "photo" in sent[1]
    assert actions[-1]["method"] == "sendDocument" and data == b"col\n1\n"
