"""Every update passes here first: who is asking, and may they do this?"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from functools import partial

from telegram import Update

from core.access import Member, Sender, audit, lookup
from core.db.models import Role

from . import messages
from .retry import with_db_retry
from .services import BotServices

log = logging.getLogger(__name__)


class Need(enum.Enum):
    MEMBER = "member"
    REVIEWER = "reviewer"
    ADMIN = "admin"


def sender_of(update: Update) -> Sender | None:
    user = update.effective_user
    if user is None:
        return None
    return Sender(user.id, user.username, user.full_name)


async def refuse(update: Update, text: str) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)


async def within_rate(update: Update, services: BotServices, sender: Sender,
                      action: str) -> bool:
    """The per-user message limit; the first refusal in a window is explained, later ones not."""
    verdict = services.messages_limit.check(sender.telegram_id, time.monotonic())
    if not verdict.allowed:
        log.info("rate limit: dropped %s from Telegram user %s", action, sender.telegram_id)
        if verdict.tell:
            await refuse(update, messages.SLOW_DOWN)
    return verdict.allowed


async def authorise(update: Update, services: BotServices, action: str,
                    need: Need = Need.MEMBER) -> Member | None:
    """The member if allowed; otherwise one polite refusal, and privileged attempts are logged."""
    sender = sender_of(update)
    if sender is None or not await within_rate(update, services, sender, action):
        return None

    async def tell_busy() -> None:
        await refuse(update, messages.DATABASE_BUSY)

    member = await with_db_retry(
        partial(lookup, services.sessions, sender, services.settings.admin_ids),
        services.settings, tell_busy)
    if member is None or not member.approved:
        text = messages.DENIED if member and member.role is Role.DENIED else messages.NOT_APPROVED
        if need is Need.ADMIN:
            await _log_refusal(services, sender.telegram_id, action, "not approved")
        await refuse(update, text)
        return None
    if need is Need.ADMIN and not member.is_admin:
        await _log_refusal(services, sender.telegram_id, action, f"role {member.role.value}")
        await refuse(update, messages.ADMIN_ONLY)
        return None
    if need is Need.REVIEWER and not member.can_review:
        await refuse(update, messages.REVIEWER_ONLY)
        return None
    return member


async def _log_refusal(services: BotServices, telegram_id: int, action: str,
                       reason: str) -> None:
    log.warning("refused %s for Telegram user %s (%s)", action, telegram_id, reason)
    await asyncio.to_thread(audit, services.sessions, telegram_id, action, False, reason)
