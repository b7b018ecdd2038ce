"""The outbox: finished submissions not yet told to their user are delivered, then marked.

Results are delivered from the database, not from the worker, so a result finished while the bot
was down is sent when it comes back. Delivery edits the "analysing…" message: repeating an edit
after a crash shows the user nothing new, so a result is never seen twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from telegram import ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import ExtBot

from core.enums import SubmissionStatus
from core.retraining.jobs import mark_reported, pending_reports
from core.storage import BlobError
from core.submissions import (
    Delivery,
    claim_stale,
    defer_delivery,
    delivery_failed,
    mark_delivered,
    mark_picture_delivered,
    move_chat,
    pending_deliveries,
)

from . import keyboards, messages
from .pacing import retry_seconds
from .services import BotServices

log = logging.getLogger(__name__)
# How long one result may wait for its chat's turn (ChatPacer) before the outbox defers it:
# short, so a pass never sits on one busy chat.
OUTBOX_WAIT = 1.0


async def deliver_picture(bot: ExtBot[Any], delivery: Delivery, services: BotServices) -> None:
    """Send the annotated field picture (once) before the text result."""
    if delivery.annotated_sha256 is None or delivery.picture_delivered:
        return
    try:
        picture = await asyncio.to_thread(services.store.read, delivery.annotated_sha256)
    except BlobError as exc:
        # The text result still goes out; a picture that cannot be trusted never does.
        log.error("annotated picture of submission %s not sent: %s", delivery.submission_id, exc)
        await asyncio.to_thread(mark_picture_delivered, services.sessions, delivery.submission_id)
        return
    await bot.send_photo(
        delivery.chat_id, photo=picture, caption=messages.picture_caption(delivery),
        reply_parameters=ReplyParameters(delivery.message_id, allow_sending_without_reply=True),
        rate_limit_args=OUTBOX_WAIT,
    )
    await asyncio.to_thread(mark_picture_delivered, services.sessions, delivery.submission_id)


async def deliver(bot: ExtBot[Any], delivery: Delivery) -> None:
    text = messages.result_text(delivery)
    # Reviewers confirm or correct from the result itself.
    markup = (keyboards.result_review(delivery.submission_id)
              if delivery.status is SubmissionStatus.DONE and delivery.classified else None)
    if delivery.reply_message_id is not None:
        try:
            await bot.edit_message_text(
                text, chat_id=delivery.chat_id, message_id=delivery.reply_message_id,
                reply_markup=markup, rate_limit_args=OUTBOX_WAIT,
            )
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return  # an earlier attempt got through before we could record it
            log.info("cannot edit reply of submission %s (%s); sending anew",
                     delivery.submission_id, exc)
    await bot.send_message(
        delivery.chat_id, text, reply_markup=markup,
        reply_parameters=ReplyParameters(delivery.message_id, allow_sending_without_reply=True),
        rate_limit_args=OUTBOX_WAIT,
    )


async def _deliver_chat(bot: ExtBot[Any], chat: list[Delivery], services: BotServices) -> int:
    """One chat's results, in order; the first that cannot go now ends this chat's turn."""
    sent = 0
    for delivery in chat:
        failed = partial(delivery_failed, services.sessions, delivery.submission_id)
        try:
            await deliver_picture(bot, delivery, services)
            await deliver(bot, delivery)
        except RetryAfter as exc:
            # Flood control (Telegram's, or our own pacing): this chat waits; no attempt lost.
            seconds = retry_seconds(exc)
            log.info("results to chat %s wait %.0f s (flood control)", delivery.chat_id, seconds)
            await asyncio.to_thread(defer_delivery, services.sessions, delivery.submission_id,
                                    seconds)
            return sent
        except ChatMigrated as exc:
            moved = await asyncio.to_thread(move_chat, services.sessions, delivery.chat_id,
                                            exc.new_chat_id)
            log.info("chat %s is now %s: %d result(s) follow it", delivery.chat_id,
                     exc.new_chat_id, moved)
            return sent
        except (Forbidden, BadRequest) as exc:
            # The user blocked the bot, or Telegram refuses this message for good: retrying
            # can never succeed. The reason is kept with the submission.
            log.warning("submission %s cannot be delivered: %s", delivery.submission_id, exc)
            await asyncio.to_thread(failed, f"{type(exc).__name__}: {exc}", permanent=True)
            continue
        except TelegramError as exc:
            gave_up = await asyncio.to_thread(failed, f"{type(exc).__name__}: {exc}")
            log.warning("delivery of submission %s failed (%s)%s", delivery.submission_id, exc,
                        "; giving up" if gave_up else "; will retry")
            continue
        await asyncio.to_thread(mark_delivered, services.sessions, delivery.submission_id)
        sent += 1
    return sent


async def deliver_pending(bot: ExtBot[Any], services: BotServices) -> int:
    """One pass of the outbox: each chat's results go side by side with the others', so one
    chat's failures or pacing (flood limits, a blocked bot, a refusal) never hold up another."""
    chats: dict[int, list[Delivery]] = {}
    for delivery in await asyncio.to_thread(pending_deliveries, services.sessions):
        chats.setdefault(delivery.chat_id, []).append(delivery)
    counts = await asyncio.gather(*(_deliver_chat(bot, chat, services)
                                    for chat in chats.values()))
    return sum(counts)


async def relay_job_progress(bot: ExtBot[Any], services: BotServices) -> None:
    """Edit each admin's retraining message with its job's latest progress."""
    for report in await asyncio.to_thread(pending_reports, services.sessions):
        try:
            await bot.edit_message_text(messages.fit(messages.job_text(report)),
                                        chat_id=report.chat_id,
                                        message_id=report.message_id)
        except RetryAfter:
            continue  # progress is coalesced: the next pass shows this job's latest
        except (BadRequest, Forbidden, ChatMigrated) as exc:
            # Not modified, a blocked admin, a migrated chat: this report can never be shown;
            # marked like a shown one so it is not retried on every pass.
            if "not modified" not in str(exc).lower():
                log.warning("cannot show progress of job %s: %s", report.job_id, exc)
        except TelegramError as exc:
            log.warning("progress of job %s not shown yet: %s", report.job_id, exc)
            continue
        await asyncio.to_thread(mark_reported, services.sessions, report.job_id, report.seq)


async def requeue_stale(services: BotServices) -> int:
    older_than = timedelta(seconds=services.settings.requeue_after_seconds)
    stale = await asyncio.to_thread(claim_stale, services.sessions, older_than)
    for submission_id in stale:
        log.warning("submission %s unfinished after %s; enqueueing it again",
                    submission_id, older_than)
        await asyncio.to_thread(services.queue.enqueue_classify, submission_id)
    return len(stale)


async def delivery_loop(bot: ExtBot[Any], services: BotServices) -> None:
    next_requeue = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            await deliver_pending(bot, services)
            await relay_job_progress(bot, services)
            if loop.time() >= next_requeue:
                next_requeue = loop.time() + min(60.0, services.settings.requeue_after_seconds)
                await requeue_stale(services)
        except Exception:
            # The database, broker or network may be down for a moment; the next pass retries.
            log.exception("delivery pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(services.wake_delivery.wait(),
                                   services.settings.delivery_poll_seconds)
        services.wake_delivery.clear()
