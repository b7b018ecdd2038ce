"""Every update passes here first: who is asking, may they do this, and the database behind a
retry. Handlers and buttons alike receive a :class:`Request` only once access is settled."""

from __future__ import annotations

import enum
import functools
import logging
import time
import unicodedata
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from telegram import Message, Update
from telegram.ext import ContextTypes

from core.access import Member, Sender, audit, lookup
from core.db.session import SessionFactory
from core.enums import Role

from . import messages
from .retry import with_db_retry
from .services import BotServices

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
P = ParamSpec("P")
T = TypeVar("T")


class Need(enum.Enum):
    MEMBER = "member"
    REVIEWER = "reviewer"
    ADMIN = "admin"


def sender_of(update: Update) -> Sender | None:
    user = update.effective_user
    if user is None:
        return None
    return Sender(user.id, user.username, user.full_name)


MAX_ARGUMENT = 64  # characters: a case reference, a version, a group name


def arguments_fit(args: Sequence[str]) -> bool:
    """No control or invisible format characters (NUL, zero-width spaces: a database refuses
    the first, a reader cannot see the second) and nothing longer than a name needs."""
    text = "".join(args)
    return len(text) <= 2 * MAX_ARGUMENT and all(len(arg) <= MAX_ARGUMENT for arg in args) \
        and not any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


async def refuse(update: Update, text: str) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)


async def tell_busy(update: Update) -> None:
    # A button press may be answered only once, so the wait is told in the chat and the answer
    # itself still comes when the database is back.
    if update.effective_message is not None:
        await update.effective_message.reply_text(messages.DATABASE_BUSY)


async def database_call(update: Update, services: BotServices, call: Callable[[], T]) -> T:
    """``call`` off the event loop, retried through a database outage; the user is told once if
    it takes long."""
    return await with_db_retry(call, services.settings, partial(tell_busy, update))


@dataclass(frozen=True)
class Request:
    """An update whose sender may do what they asked, and what the handler needs to answer."""

    update: Update
    sender: Sender
    member: Member
    services: BotServices

    @property
    def message(self) -> Message | None:
        return self.update.effective_message

    async def run(self, function: Callable[Concatenate[SessionFactory, P], T], *args: P.args,
                  **kwargs: P.kwargs) -> T:
        """A ``core`` function on the database, through the retry."""
        return await database_call(self.update, self.services,
                                   partial(function, self.services.sessions, *args, **kwargs))


async def within_rate(update: Update, services: BotServices, sender: Sender,
                      action: str) -> bool:
    """The per-user message limit; the first refusal in a window is explained, later ones not."""
    verdict = services.messages_limit.check(sender.telegram_id, time.monotonic())
    if not verdict.allowed:
        log.info("rate limit: dropped %s from Telegram user %s", action, sender.telegram_id)
        if verdict.tell:
            await refuse(update, messages.SLOW_DOWN)
    return verdict.allowed


async def admit(update: Update, services: BotServices, action: str,
                need: Need = Need.MEMBER) -> Request | None:
    """The request if allowed; otherwise one polite refusal, and privileged attempts are
    logged."""
    sender = sender_of(update)
    if sender is None or not await within_rate(update, services, sender, action):
        return None
    member = await database_call(
        update, services, partial(lookup, services.sessions, sender, services.settings.admin_ids))
    if member is None or not member.approved:
        # A pending user already asked: telling them to send /start again would be wrong.
        text = (messages.DENIED if member and member.role is Role.DENIED
                else messages.PENDING if member and member.role is Role.PENDING
                else messages.NOT_APPROVED)
        if need is Need.ADMIN:
            await _log_refusal(update, services, sender.telegram_id, action, "not approved")
        await refuse(update, text)
        return None
    if need is Need.ADMIN and not member.is_admin:
        await _log_refusal(update, services, sender.telegram_id, action,
                           f"role {member.role.value}")
        await refuse(update, messages.ADMIN_ONLY)
        return None
    if need is Need.REVIEWER and not member.can_review:
        await refuse(update, messages.REVIEWER_ONLY)
        return None
    return Request(update, sender, member, services)


async def _log_refusal(update: Update, services: BotServices, telegram_id: int, action: str,
                       reason: str) -> None:
    log.warning("refused %s for Telegram user %s (%s)", action, telegram_id, reason)
    await database_call(update, services, partial(audit, services.sessions, telegram_id, action,
                                                  False, reason))


class HasServices(Protocol):
    services: BotServices


S = TypeVar("S", bound=HasServices)
Guarded = Callable[[S, Request, Context], Coroutine[Any, Any, None]]
Handler = Callable[[S, Update, Context], Coroutine[Any, Any, None]]


def guarded(action: str, need: Need = Need.MEMBER) -> Callable[[Guarded[S]], Handler[S]]:
    """A command handler that runs only for a sender who may do ``action``."""

    def decorate(method: Guarded[S]) -> Handler[S]:
        @functools.wraps(method)
        async def handler(self: S, update: Update, context: Context) -> None:
            if (request := await admit(update, self.services, action, need)) is None:
                return
            if context.args and not arguments_fit(context.args):
                await refuse(update, messages.BAD_ARGUMENT)
                return
            await method(self, request, context)

        return handler

    return decorate
