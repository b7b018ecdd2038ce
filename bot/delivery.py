"""The outbox: finished submissions not yet told to their user are delivered, then marked.

Results are delivered from the database, not from the worker, so a result finished while the bot
was down is sent when it comes back. Delivery edits the "analysing…" message: repeating an edit
after a crash shows the user nothing new, so a result is never seen twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, InputMediaPhoto, ReplyParameters
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
T = TypeVar("T")


async def _picture(delivery: Delivery, services: BotServices) -> bytes | None:
    """The annotated field picture still to be sent, if any."""
    if delivery.annotated_sha256 is None or delivery.picture_delivered:
        return None
    try:
        return await asyncio.to_thread(services.store.read, delivery.annotated_sha256)
    except BlobError as exc:
        # The text result still goes out; a picture that cannot be trusted never does.
        log.error("annotated picture of submission %s not sent: %s", delivery.submission_id, exc)
        await asyncio.to_thread(mark_picture_delivered, services.sessions, delivery.submission_id)
        return None


async def deliver_pictures(bot: ExtBot[Any], unit: list[Delivery],
                           services: BotServices) -> None:
    """Send the annotated field pictures (once each) before the text: one photo, or one album
    of them for an album (captions numbered as in the text)."""
    pictures = [(number, delivery, picture) for number, delivery in enumerate(unit, start=1)
                if (picture := await _picture(delivery, services)) is not None]
    if not pictures:
        return
    first = unit[0]
    reply = ReplyParameters(first.message_id, allow_sending_without_reply=True)
    if len(pictures) == 1:
        number, delivery, picture = pictures[0]
        caption = (messages.album_caption(number, delivery) if len(unit) > 1
                   else messages.picture_caption(delivery))
        await bot.send_photo(delivery.chat_id, photo=picture, caption=caption,
                             reply_parameters=reply, rate_limit_args=OUTBOX_WAIT)
    else:
        await bot.send_media_group(
            first.chat_id, [InputMediaPhoto(picture, caption=messages.album_caption(n, d))
                            for n, d, picture in pictures],
            reply_parameters=reply, rate_limit_args=OUTBOX_WAIT)
    for _number, delivery, _picture_bytes in pictures:
        await asyncio.to_thread(mark_picture_delivered, services.sessions,
                                delivery.submission_id)


def _answer(unit: list[Delivery]) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text result and its review buttons: one photo's, or one for a whole album."""
    reviewable = [(number, d.submission_id) for number, d in enumerate(unit, start=1)
                  if d.status is SubmissionStatus.DONE and d.classified]
    if len(unit) == 1:
        return (messages.result_text(unit[0]),
                keyboards.result_review(unit[0].submission_id) if reviewable else None)
    return messages.album_text(unit), keyboards.album_review(reviewable) if reviewable else None


async def deliver(bot: ExtBot[Any], unit: list[Delivery]) -> None:
    """Show the result by editing the acknowledgement (an album shares one), else anew."""
    text, markup = _answer(unit)
    first = unit[0]
    ack = next((d.reply_message_id for d in unit if d.reply_message_id is not None), None)
    if ack is not None:
        try:
            await bot.edit_message_text(text, chat_id=first.chat_id, message_id=ack,
                                        reply_markup=markup, rate_limit_args=OUTBOX_WAIT)
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return  # an earlier attempt got through before we could record it
            log.info("cannot edit reply of submission %s (%s); sending anew",
                     first.submission_id, exc)
    await bot.send_message(
        first.chat_id, text, reply_markup=markup,
        reply_parameters=ReplyParameters(first.message_id, allow_sending_without_reply=True),
        rate_limit_args=OUTBOX_WAIT,
    )


def _units(deliveries: list[Delivery]) -> dict[int, list[list[Delivery]]]:
    """Per chat, in order: single results, and each album's results as one unit."""
    chats: dict[int, list[list[Delivery]]] = {}
    albums: dict[tuple[int, str], list[Delivery]] = {}
    for delivery in deliveries:
        if delivery.media_group_id is None:
            chats.setdefault(delivery.chat_id, []).append([delivery])
            continue
        key = (delivery.chat_id, delivery.media_group_id)
        if key not in albums:
            albums[key] = []
            chats.setdefault(delivery.chat_id, []).append(albums[key])
        albums[key].append(delivery)
    for album in albums.values():
        # Numbered in the order the user sent them, not the order they were handled.
        album.sort(key=lambda delivery: delivery.message_id)
    return chats


async def _each(unit: list[Delivery], call: Callable[..., T], services: BotServices,
                *args: Any, **kwargs: Any) -> list[T]:
    """``call(sessions, submission_id, *args)`` for every submission of the unit: an album's
    outcomes are recorded together."""
    return [await asyncio.to_thread(call, services.sessions, delivery.submission_id, *args,
                                    **kwargs) for delivery in unit]


async def _deliver_chat(bot: ExtBot[Any], units: list[list[Delivery]],
                        services: BotServices) -> int:
    """One chat's results, in order; the first that cannot go now ends this chat's turn."""
    sent = 0
    for unit in units:
        chat_id, ids = unit[0].chat_id, [d.submission_id for d in unit]
        try:
            await deliver_pictures(bot, unit, services)
            await deliver(bot, unit)
        except RetryAfter as exc:
            # Flood control (Telegram's, or our own pacing): this chat waits; no attempt lost.
            seconds = retry_seconds(exc)
            log.info("results to chat %s wait %.0f s (flood control)", chat_id, seconds)
            await _each(unit, defer_delivery, services, seconds)
            return sent
        except ChatMigrated as exc:
            moved = await asyncio.to_thread(move_chat, services.sessions, chat_id,
                                            exc.new_chat_id)
            log.info("chat %s is now %s: %d result(s) follow it", chat_id, exc.new_chat_id,
                     moved)
            return sent
        except (Forbidden, BadRequest) as exc:
            # The user blocked the bot, or Telegram refuses this message for good: retrying
            # can never succeed. The reason is kept with the submission.
            log.warning("submissions %s cannot be delivered: %s", ids, exc)
            await _each(unit, delivery_failed, services, f"{type(exc).__name__}: {exc}",
                        permanent=True)
            continue
        except TelegramError as exc:
            gave_up = await _each(unit, delivery_failed, services,
                                  f"{type(exc).__name__}: {exc}")
            log.warning("delivery of submissions %s failed (%s)%s", ids, exc,
                        "; giving up" if any(gave_up) else "; will retry")
            continue
        await _each(unit, mark_delivered, services)
        sent += len(unit)
    return sent


async def deliver_pending(bot: ExtBot[Any], services: BotServices) -> int:
    """One pass of the outbox: each chat's results go side by side with the others', so one
    chat's failures or pacing (flood limits, a blocked bot, a refusal) never hold up another."""
    pending = [delivery for delivery in
               await asyncio.to_thread(pending_deliveries, services.sessions)
               if not services.album_arriving(delivery.chat_id, delivery.media_group_id)]
    counts = await asyncio.gather(*(_deliver_chat(bot, units, services)
                                    for units in _units(pending).values()))
    return sum(counts)


async def relay_job_progress(bot: ExtBot[Any], services: BotServices) -> None:
    """Edit each admin's retraining message with its job's latest progress."""
    for report in await asyncio.to_thread(pending_reports, services.sessions):
        try:
            markup = (keyboards.candidate_decision(report.job_id)
                      if messages.kept_candidate(report) else None)
            await bot.edit_message_text(messages.fit(messages.job_text(report)),
                                        chat_id=report.chat_id,
                                        message_id=report.message_id, reply_markup=markup)
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
