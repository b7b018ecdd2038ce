"""Turn a received Telegram photo or document into a stored, queued submission."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial

from telegram import Document, Message, PhotoSize
from telegram.error import TelegramError

from core.access import Sender
from core.intake import IntakeError, open_image
from core.storage import ImageStore, StoredImage
from core.storage.images import Encoding, encode
from core.submissions import (
    Received,
    mark_delivered,
    queue_depth,
    record_submission,
    set_reply_message,
    stored_bytes_total,
)

from . import messages
from .retry import TRANSIENT, with_db_retry
from .services import AlbumAck, BotServices

log = logging.getLogger(__name__)
BUSY_REPEAT_SECONDS = 60.0
# A photo's acknowledgement gives the "send it as a file" tip once a day, not every time.
TIP_REPEAT_SECONDS = 24 * 3600.0
ALBUM_ACK_MEMORY = 600.0  # seconds an album's acknowledgement is remembered for late photos


@dataclass(frozen=True)
class Accepted:
    stored: StoredImage
    width: int
    height: int
    encoded: bytes  # what was stored, to store again should a purge have taken it meanwhile
    encoding: Encoding


def _ensure_stored(store: ImageStore, accepted: Accepted) -> None:
    """The same photo sent again may have been named by a purge's list of files to delete
    while it was being recorded: once the row names it, the file is put back if it went."""
    if not store.exists(accepted.stored.sha256):
        store.put_encoded(accepted.encoded, accepted.encoding)


JPEG: Encoding = "jpg"


class QuotaReached(Exception):
    """What would be stored does not fit in the storage quota's room."""


def _store(data: bytes, store: ImageStore, max_pixels: int, max_bytes: int,
           room: int | None) -> Accepted:
    # A JPEG is stored as sent, so its pixels are only checked, not kept (full_decode).
    clean = open_image(data, max_pixels=max_pixels, max_bytes=max_bytes, full_decode=False)
    encoded, encoding = ((clean.encoded_jpeg, JPEG) if clean.encoded_jpeg
                         else encode(clean.image))
    # The quota counts what is stored: a 1.5 MB WebP is kept as a PNG ten times its size.
    if room is not None and len(encoded) > room:
        raise QuotaReached(len(encoded))
    return Accepted(store.put_encoded(encoded, encoding), clean.width, clean.height, encoded,
                    encoding)


async def _queue_depth(services: BotServices) -> int:
    try:
        return await asyncio.to_thread(queue_depth, services.sessions)
    except TRANSIENT:
        return 0  # the cap is best effort: a database hiccup is handled when recording


async def _storage_room(services: BotServices) -> int | None:
    """Bytes the quota still allows; None without a quota."""
    quota = services.settings.storage_quota_bytes
    if quota is None:
        return None
    try:
        used = await asyncio.to_thread(stored_bytes_total, services.sessions)
    except TRANSIENT:
        return None  # best effort, as for the queue cap
    return quota - used


async def _acknowledge(message: Message, services: BotServices, text: str) -> int | None:
    """Send the acknowledgement; an album's photos share the first one's. Returns its message
    id, or None when Telegram refused it (the result then comes as a new message)."""
    if message.media_group_id is None:
        return await _send_ack(message, text)
    key = (message.chat_id, message.media_group_id)
    now = time.monotonic()
    for old in [k for k, ack in services.album_acks.items()
                if now - ack.started > ALBUM_ACK_MEMORY]:
        del services.album_acks[old]
    if (ack := services.album_acks.get(key)) is not None:
        return await asyncio.shield(ack.message_id)
    future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    services.album_acks[key] = AlbumAck(now, future)
    try:
        future.set_result(await _send_ack(message, messages.ACK_ALBUM))
    finally:
        if not future.done():  # cancelled mid-send: the album's other photos must not hang
            future.set_result(None)
    return future.result()


async def _send_ack(message: Message, text: str) -> int | None:
    try:
        return (await message.reply_text(text, do_quote=True)).message_id
    except TelegramError as exc:
        # The photo is stored and recorded: it is analysed all the same, and the outbox sends
        # the result as a new message (after ACK_GRACE) instead of editing the acknowledgement.
        log.warning("acknowledgement of message %s failed: %s", message.message_id, exc)
        return None


async def _refuse_at_once(message: Message, services: BotServices, submission_id: int,
                          reason: str | None) -> bool:
    """A file refused before any analysis (not an image, too large) is answered with the
    reason alone, never "analysing…" first; False when Telegram refused the reply."""
    try:
        sent = await message.reply_text(messages.refusal_text(reason), do_quote=True)
    except TelegramError as exc:
        log.warning("refusal of message %s not sent yet: %s", message.message_id, exc)
        return False
    await with_db_retry(partial(set_reply_message, services.sessions, submission_id,
                                sent.message_id), services.settings)
    await with_db_retry(partial(mark_delivered, services.sessions, submission_id),
                        services.settings)
    return True


async def _download(attachment: PhotoSize | Document, message_id: int) -> bytes | None:
    try:
        telegram_file = await attachment.get_file()
        return bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("download for message %s failed: %s", message_id, exc)
        return None


async def receive_image(message: Message, sender: Sender, services: BotServices) -> None:
    with services.receiving(message.chat_id, message.media_group_id):
        await _receive_image(message, sender, services)


async def _receive_image(message: Message, sender: Sender, services: BotServices) -> None:
    settings = services.settings
    attachment: PhotoSize | Document
    if message.photo:
        attachment = message.photo[-1]  # Telegram lists sizes smallest first
        received = Received(message.chat_id, message.message_id, "photo",
                            attachment.file_unique_id, None, message.media_group_id)
        ack_text = messages.ACK_DOCUMENT
        now = time.monotonic()
        if now - services.told_tip.get(sender.telegram_id, -TIP_REPEAT_SECONDS) \
                >= TIP_REPEAT_SECONDS:
            services.told_tip[sender.telegram_id] = now
            ack_text = messages.ACK_PHOTO
    else:
        assert message.document is not None
        attachment = message.document
        received = Received(message.chat_id, message.message_id, "document",
                            attachment.file_unique_id, attachment.file_name,
                            message.media_group_id)
        ack_text = messages.ACK_DOCUMENT

    now = time.monotonic()
    if not services.photos_limit.check(sender.telegram_id, now).allowed:
        await message.reply_text(messages.PHOTOS_SLOW_DOWN.format(
            limit=settings.max_photos_per_minute,
            seconds=round(services.photos_limit.retry_after(sender.telegram_id, now))),
            do_quote=True)
        return

    if await _queue_depth(services) >= settings.max_queue_depth:
        if now - services.told_busy.get(sender.telegram_id, -BUSY_REPEAT_SECONDS) \
                >= BUSY_REPEAT_SECONDS:
            services.told_busy[sender.telegram_id] = now
            await message.reply_text(messages.BUSY, do_quote=True)
        return

    rejection: str | None = None
    accepted: Accepted | None = None
    size = attachment.file_size or 0
    data = None
    room = await _storage_room(services)
    if size > settings.max_upload_bytes:
        rejection = messages.too_large(size, settings.max_upload_bytes)
    elif room is not None and size > room:
        log.error("storage quota of %s bytes reached: photo %s/%s refused",
                  settings.storage_quota_bytes, message.chat_id, message.message_id)
        rejection = messages.STORAGE_FULL
    elif (data := await _download(attachment, message.message_id)) is None:
        # Still recorded and answered: the user must not be left without a reply.
        rejection = messages.DOWNLOAD_FAILED
    if data is not None:
        try:
            accepted = await asyncio.get_running_loop().run_in_executor(
                services.decoder, _store, data, services.store, settings.max_image_pixels,
                settings.max_upload_bytes, room)
        except IntakeError as exc:
            log.info("rejected message %s/%s: %s", message.chat_id, message.message_id, exc.code)
            rejection = exc.user_message
        except QuotaReached as exc:
            log.error("storage quota of %s bytes reached: photo %s/%s (%s bytes stored) "
                      "refused", settings.storage_quota_bytes, message.chat_id,
                      message.message_id, exc.args[0])
            rejection = messages.STORAGE_FULL

    async def tell_busy() -> None:
        await message.reply_text(messages.DATABASE_BUSY, do_quote=True)

    # Recorded before it is acknowledged: whatever the bot has acknowledged, it owes an answer
    # for, even if it crashes right after (the outbox answers with a new message then).
    try:
        outcome = await with_db_retry(partial(
            record_submission, services.sessions, sender, received,
            reply_message_id=None,
            sha256=accepted.stored.sha256 if accepted else None,
            width=accepted.width if accepted else None,
            height=accepted.height if accepted else None,
            rejection=rejection,
            stored_bytes=accepted.stored.size if accepted else None,
        ), settings, tell_busy)
    except TRANSIENT:
        log.error("message %s/%s not recorded: database down for %s s", message.chat_id,
                  message.message_id, settings.db_retry_seconds)
        await message.reply_text(messages.NOT_STORED, do_quote=True)
        return
    if not outcome.created:
        log.info("duplicate update for message %s ignored", message.message_id)
        return
    if accepted is not None:
        await asyncio.to_thread(_ensure_stored, services.store, accepted)
    elif message.media_group_id is None:
        if not await _refuse_at_once(message, services, outcome.submission_id, rejection):
            services.wake_delivery.set()  # the outbox answers with a new message
        return
    if (ack_id := await _acknowledge(message, services, ack_text)) is not None:
        await with_db_retry(partial(set_reply_message, services.sessions,
                                    outcome.submission_id, ack_id), settings)
    if accepted is None:
        services.wake_delivery.set()
        return
    try:
        await asyncio.to_thread(services.queue.enqueue_classify, outcome.submission_id)
    except Exception:
        # The row is queued in the database: the requeue pass sends it again once the broker
        # is back, so the user is still answered.
        log.exception("broker unavailable; submission %s waits for the requeue pass",
                      outcome.submission_id)
