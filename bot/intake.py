"""Turn a received Telegram photo or document into a stored, queued submission."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Document, Message, PhotoSize
from telegram.error import TelegramError

from core.intake import IntakeError, open_image
from core.storage import ImageStore, StoredImage
from core.submissions import Received, Sender, record_submission

from . import messages
from .services import BotServices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    stored: StoredImage
    width: int
    height: int


def _store(data: bytes, store: ImageStore, max_pixels: int, max_bytes: int) -> Accepted:
    clean = open_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    return Accepted(store.put(clean.image), clean.width, clean.height)


async def _download(attachment: PhotoSize | Document, message_id: int) -> bytes | None:
    try:
        telegram_file = await attachment.get_file()
        return bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("download for message %s failed: %s", message_id, exc)
        return None


async def receive_image(message: Message, services: BotServices) -> None:
    settings = services.settings
    user = message.from_user
    sender = Sender(
        telegram_id=user.id if user else message.chat_id,
        username=user.username if user else None,
        full_name=user.full_name if user else None,
    )
    attachment: PhotoSize | Document
    if message.photo:
        attachment = message.photo[-1]  # Telegram lists sizes smallest first
        received = Received(message.chat_id, message.message_id, "photo",
                            attachment.file_unique_id, None)
        ack_text = messages.ACK_PHOTO
    else:
        assert message.document is not None
        attachment = message.document
        received = Received(message.chat_id, message.message_id, "document",
                            attachment.file_unique_id, attachment.file_name)
        ack_text = messages.ACK_DOCUMENT

    ack = await message.reply_text(ack_text, do_quote=True)

    rejection: str | None = None
    accepted: Accepted | None = None
    size = attachment.file_size or 0
    data = None
    if size > settings.max_upload_bytes:
        rejection = messages.too_large(size, settings.max_upload_bytes)
    elif (data := await _download(attachment, message.message_id)) is None:
        # Still recorded and answered: the user must not be left at "analysing…".
        rejection = messages.DOWNLOAD_FAILED
    if data is not None:
        try:
            accepted = await asyncio.to_thread(
                _store, data, services.store, settings.max_image_pixels, settings.max_upload_bytes
            )
        except IntakeError as exc:
            log.info("rejected message %s/%s: %s", message.chat_id, message.message_id, exc.code)
            rejection = exc.user_message

    outcome = await asyncio.to_thread(
        record_submission, services.sessions, sender, received,
        reply_message_id=ack.message_id,
        sha256=accepted.stored.sha256 if accepted else None,
        width=accepted.width if accepted else None,
        height=accepted.height if accepted else None,
        rejection=rejection,
    )
    if not outcome.created:
        log.info("duplicate update for message %s ignored", message.message_id)
        return
    if accepted is None:
        services.wake_delivery.set()
        return
    await asyncio.to_thread(services.queue.enqueue_classify, outcome.submission_id)
