"""Command and message handlers: each checks access, calls ``core``, replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session, sessionmaker
from telegram import InputFile, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from core import registry
from core.access import AccessDenied, Member, admin_chat_ids, assign_group, audit, register
from core.cases import CaseDetail, InvalidReference, case_detail, find_case, history, open_case
from core.db.models import Role
from core.export import CaseExport, differential_chart_png, export_case
from core.retraining.jobs import JobAlreadyRunning, attach_message, request_job

from . import keyboards, messages
from .guard import Need, authorise, sender_of, within_rate
from .intake import receive_image
from .retry import with_db_retry
from .services import BotServices

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
P = ParamSpec("P")
T = TypeVar("T")
Factory = sessionmaker[Session]


class Handlers:
    def __init__(self, services: BotServices) -> None:
        self.services = services

    async def _run(self, function: Callable[Concatenate[Factory, P], T], *args: P.args,
                   **kwargs: P.kwargs) -> T:
        """Run a ``core`` function on the database off the event loop, outlasting outages."""
        return await with_db_retry(partial(function, self.services.sessions, *args, **kwargs),
                                   self.services.settings)

    # ---- access -----------------------------------------------------------------------
    async def start(self, update: Update, context: Context) -> None:
        sender, message = sender_of(update), update.effective_message
        if sender is None or message is None \
                or not await within_rate(update, self.services, sender, "start"):
            return
        registration = await self._run(register, sender, self.services.settings.admin_ids)
        member = registration.member
        if member.approved:
            await message.reply_text(messages.WELCOME)
        elif member.role is Role.DENIED:
            await message.reply_text(messages.DENIED)
        elif registration.newly_pending:
            await message.reply_text(messages.PENDING_NEW)
            await self._ask_admins(context, member)
        else:
            await message.reply_text(messages.PENDING)

    async def _ask_admins(self, context: Context, member: Member) -> None:
        admins = await self._run(admin_chat_ids, self.services.settings.admin_ids)
        for chat_id in admins:
            try:
                await context.bot.send_message(chat_id, messages.access_request(member),
                                               reply_markup=keyboards.access_decision(
                                                   member.user_id))
            except TelegramError as exc:
                log.warning("could not ask admin %s about user %s: %s", chat_id,
                            member.telegram_id, exc)

    async def help(self, update: Update, _context: Context) -> None:
        if await authorise(update, self.services, "help") and update.effective_message:
            await update.effective_message.reply_text(messages.HELP)

    async def group(self, update: Update, context: Context) -> None:
        admin = await authorise(update, self.services, "group", Need.ADMIN)
        message = update.effective_message
        if admin is None or message is None:
            return
        args = context.args or []
        if len(args) != 2 or not args[0].isdigit():
            await message.reply_text("Usage: /group TELEGRAM_USER_ID GROUP_NAME")
            return
        try:
            moved = await self._run(assign_group, admin, int(args[0]), args[1])
        except (ValueError, AccessDenied) as exc:
            await message.reply_text(str(exc))
            return
        await self._run(audit, admin.telegram_id, "group", True, f"{args[0]} -> {args[1]}")
        await message.reply_text(messages.group_assigned(moved))

    # ---- photos ---------------------------------------------------------------------------
    async def image(self, update: Update, _context: Context) -> None:
        if await authorise(update, self.services, "photo") and update.effective_message:
            await receive_image(update.effective_message, self.services)

    async def other(self, update: Update, _context: Context) -> None:
        if await authorise(update, self.services, "text") and update.effective_message:
            await update.effective_message.reply_text(messages.NOT_A_PHOTO)

    # ---- cases ----------------------------------------------------------------------------
    async def case(self, update: Update, context: Context) -> None:
        member = await authorise(update, self.services, "case")
        message = update.effective_message
        if member is None or message is None:
            return
        if not context.args:
            detail = (await self._run(case_detail, member, member.current_case_id)
                      if member.current_case_id else None)
            if detail is None:
                await message.reply_text("No case is open. " + messages.BAD_REFERENCE)
                return
            await self.show_case(message, detail)
            return
        try:
            detail, created = await self._run(open_case, member, " ".join(context.args))
        except InvalidReference:
            await message.reply_text(messages.BAD_REFERENCE)
            return
        await self.show_case(message, detail, created)

    async def show_case(self, message: Message, detail: CaseDetail,
                        created: bool = False) -> None:
        """The case as text, and its differential as a chart when there is one to draw."""
        await message.reply_text(messages.case_text(detail, created),
                                 reply_markup=keyboards.case_actions(detail.case_id))
        if detail.totals:
            chart = await asyncio.to_thread(differential_chart_png, detail)
            await message.reply_photo(chart, caption=f"Differential of case {detail.reference}")

    async def history(self, update: Update, _context: Context) -> None:
        member = await authorise(update, self.services, "history")
        if member is None or update.effective_message is None:
            return
        page = await self._run(history, member, 0)
        await update.effective_message.reply_text(messages.history_text(page),
                                                  reply_markup=keyboards.history(page))

    async def export(self, update: Update, context: Context) -> None:
        member = await authorise(update, self.services, "export")
        message = update.effective_message
        if member is None or message is None:
            return
        if not context.args:
            await message.reply_text("Usage: /export REF (the case's reference)")
            return
        case_id = await self._run(find_case, member, " ".join(context.args))
        if case_id is None:
            await message.reply_text(messages.NOT_FOUND)
            return
        await self.send_export(message,
                               await self._run(export_case, member, self.services.store, case_id))

    async def send_export(self, message: Message, exported: CaseExport) -> None:
        await message.reply_document(InputFile(exported.csv_bytes, f"{exported.stem}.csv"),
                                     caption=f"Case {exported.reference}: every cell (CSV)")
        await message.reply_document(InputFile(exported.pdf_bytes, f"{exported.stem}.pdf"),
                                     caption=f"Case {exported.reference}: report (PDF)")

    # ---- models ---------------------------------------------------------------------------
    async def retrain(self, update: Update, _context: Context) -> None:
        admin = await authorise(update, self.services, "retrain", Need.ADMIN)
        message = update.effective_message
        if admin is None or message is None:
            return
        try:
            job_id = await self._run(request_job, admin, message.chat_id)
        except JobAlreadyRunning as exc:
            await message.reply_text(messages.RETRAIN_RUNNING.format(job_id=exc.job_id))
            return
        await self._run(audit, admin.telegram_id, "retrain", True, f"job {job_id}")
        sent = await message.reply_text(messages.RETRAIN_QUEUED.format(job_id=job_id))
        await self._run(attach_message, job_id, sent.message_id)
        await asyncio.to_thread(self.services.queue.enqueue_retrain, job_id)

    async def models(self, update: Update, _context: Context) -> None:
        admin = await authorise(update, self.services, "models", Need.ADMIN)
        if admin is None or update.effective_message is None:
            return
        entries = await self._run(registry.list_models)
        await update.effective_message.reply_text(messages.models_text(entries))

    async def promote(self, update: Update, context: Context) -> None:
        admin = await authorise(update, self.services, "promote", Need.ADMIN)
        message = update.effective_message
        if admin is None or message is None:
            return
        if not context.args:
            await message.reply_text("Usage: /promote VERSION (see /models)")
            return
        try:
            ref = await self._run(registry.promote, context.args[0])
        except registry.RegistryError as exc:
            await message.reply_text(f"Cannot promote: {exc}.")
            return
        await self._run(audit, admin.telegram_id, "promote", True, ref.version)
        await message.reply_text(f"▶️ {ref.version} is now active; workers switch on their "
                                 "next photo.")

    async def rollback(self, update: Update, _context: Context) -> None:
        admin = await authorise(update, self.services, "rollback", Need.ADMIN)
        message = update.effective_message
        if admin is None or message is None:
            return
        try:
            restored, removed = await self._run(registry.rollback)
        except registry.RegistryError as exc:
            await message.reply_text(f"Cannot roll back: {exc}.")
            return
        await self._run(audit, admin.telegram_id, "rollback", True,
                        f"{removed.version} -> {restored.version}")
        await message.reply_text(f"↩️ Rolled back from {removed.version}: {restored.version} is "
                                 "active again; workers switch on their next photo.")
