"""Command and message handlers: the guard admits the sender, the handler calls ``core`` and
replies."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from telegram import InputFile, Message, Update
from telegram.error import TelegramError

from core import registry
from core.access import AccessDenied, Member, admin_chat_ids, assign_group, audit, register
from core.cases import (
    CaseDetail,
    InvalidCount,
    InvalidReference,
    case_detail,
    find_case,
    history,
    open_case,
    set_laboratory_name,
    set_wbc,
)
from core.enums import Role
from core.export import CaseExport, differential_chart_png, export_case
from core.laboratory import group_id_named, standing
from core.retraining.jobs import JobAlreadyRunning, NoLaboratory, attach_message, request_job

from . import keyboards, messages
from .guard import Context, Need, Request, database_call, guarded, sender_of, within_rate
from .intake import receive_image
from .replies import reply_pages
from .services import BotServices

log = logging.getLogger(__name__)


class Handlers:
    def __init__(self, services: BotServices) -> None:
        self.services = services

    # ---- access -----------------------------------------------------------------------
    async def start(self, update: Update, context: Context) -> None:
        # The one handler open to strangers: it is how they ask for access.
        sender, message = sender_of(update), update.effective_message
        if sender is None or message is None \
                or not await within_rate(update, self.services, sender, "start"):
            return
        registration = await database_call(update, self.services, partial(
            register, self.services.sessions, sender, self.services.settings.admin_ids))
        member = registration.member
        if member.approved:
            await message.reply_text(messages.WELCOME)
        elif member.role is Role.DENIED:
            await message.reply_text(messages.DENIED)
        elif registration.newly_pending:
            await message.reply_text(messages.PENDING_NEW)
            await self._ask_admins(update, context, member)
        else:
            await message.reply_text(messages.PENDING)

    async def _ask_admins(self, update: Update, context: Context, member: Member) -> None:
        admins = await database_call(update, self.services, partial(
            admin_chat_ids, self.services.sessions, self.services.settings.admin_ids))
        for chat_id in admins:
            try:
                await context.bot.send_message(chat_id, messages.access_request(member),
                                               reply_markup=keyboards.access_decision(
                                                   member.user_id))
            except TelegramError as exc:
                log.warning("could not ask admin %s about user %s: %s", chat_id,
                            member.telegram_id, exc)

    @guarded("help")
    async def help(self, request: Request, context: Context) -> None:
        if request.message:
            await request.message.reply_text(messages.help_text(context.bot.username))

    @guarded("group", Need.ADMIN)
    async def group(self, request: Request, context: Context) -> None:
        if (message := request.message) is None:
            return
        args = context.args or []
        # ASCII digits only: int() would also read Arabic-Indic and other scripts' digits.
        if len(args) != 2 or not (args[0].isascii() and args[0].isdigit()):
            await message.reply_text("Usage: /group TELEGRAM_USER_ID GROUP_NAME")
            return
        try:
            moved = await request.run(assign_group, request.member, int(args[0]), args[1])
        except (ValueError, AccessDenied) as exc:
            await message.reply_text(str(exc))
            return
        await request.run(audit, request.member.telegram_id, "group", True,
                          f"{args[0]} -> {moved.group_name}", moved.group_id)
        await message.reply_text(messages.group_assigned(moved, args[1]))

    # ---- photos ---------------------------------------------------------------------------
    @guarded("photo")
    async def image(self, request: Request, _context: Context) -> None:
        if request.message:
            await receive_image(request.message, request.sender, self.services)

    @guarded("text")
    async def other(self, request: Request, _context: Context) -> None:
        if (message := request.message) is None:
            return
        text = message.text or ""
        if text.startswith("/"):
            await message.reply_text(messages.unknown_command(text.split()[0]))
        else:
            await message.reply_text(messages.NOT_A_PHOTO)

    # ---- cases ----------------------------------------------------------------------------
    @guarded("case")
    async def case(self, request: Request, context: Context) -> None:
        member, message = request.member, request.message
        if message is None:
            return
        if not context.args:
            detail = (await request.run(case_detail, member, member.current_case_id)
                      if member.current_case_id else None)
            if detail is None:
                await message.reply_text("No case is open. " + messages.BAD_REFERENCE)
                return
            await self.show_case(message, detail)
            return
        try:
            opened, created = await request.run(open_case, member, " ".join(context.args))
        except InvalidReference:
            await message.reply_text(messages.BAD_REFERENCE)
            return
        await self.show_case(message, opened, created)

    async def show_case(self, message: Message, detail: CaseDetail,
                        created: bool = False) -> None:
        """The case as text, and its differential as a chart when there is one to draw."""
        await reply_pages(message, messages.case_text(detail, created),
                          keyboards.case_actions(detail.case_id))
        if detail.totals:
            chart = await asyncio.to_thread(differential_chart_png, detail)
            await message.reply_photo(chart, caption=f"Differential of case {detail.reference}")

    @guarded("wbc")
    async def wbc(self, request: Request, context: Context) -> None:
        if (message := request.message) is None:
            return
        args = context.args or []
        if len(args) != 1:
            await message.reply_text(messages.WBC_USAGE)
            return
        try:
            detail = await request.run(set_wbc, request.member, args[0])
        except InvalidCount:
            await message.reply_text(messages.WBC_USAGE)
            return
        except LookupError:
            await message.reply_text(messages.WBC_NO_CASE)
            return
        assert detail.wbc_per_nl is not None
        await message.reply_text(messages.wbc_recorded(detail.reference, detail.wbc_per_nl))

    @guarded("labname", Need.ADMIN)
    async def labname(self, request: Request, context: Context) -> None:
        if (message := request.message) is None:
            return
        try:
            name = await request.run(set_laboratory_name, request.member,
                                     " ".join(context.args or []))
        except ValueError:
            await message.reply_text(messages.LABNAME_USAGE)
            return
        except AccessDenied:
            await message.reply_text(messages.LABNAME_NO_GROUP)
            return
        await request.run(audit, request.member.telegram_id, "labname", True, name,
                          request.member.group_id)
        await message.reply_text(f"Reports of your laboratory now carry the header: {name}")

    @guarded("history")
    async def history(self, request: Request, _context: Context) -> None:
        if request.message is None:
            return
        page = await request.run(history, request.member, 0)
        await reply_pages(request.message, messages.history_text(page), keyboards.history(page))

    @guarded("export")
    async def export(self, request: Request, context: Context) -> None:
        if (message := request.message) is None:
            return
        if not context.args:
            await message.reply_text("Usage: /export REF (the case's reference)")
            return
        case_id = await request.run(find_case, request.member, " ".join(context.args))
        if case_id is None:
            await message.reply_text(messages.NOT_FOUND)
            return
        await self.send_export(message, await request.run(export_case, request.member,
                                                          self.services.store, case_id))

    async def send_export(self, message: Message, exported: CaseExport) -> None:
        await message.reply_document(InputFile(exported.csv_bytes, f"{exported.stem}.csv"),
                                     caption=f"Case {exported.reference}: every cell (CSV)")
        await message.reply_document(InputFile(exported.pdf_bytes, f"{exported.stem}.pdf"),
                                     caption=f"Case {exported.reference}: report (PDF)")

    # ---- models ---------------------------------------------------------------------------
    @guarded("retrain", Need.ADMIN)
    async def retrain(self, request: Request, _context: Context) -> None:
        await self._queue_training(request, for_group=False)

    @guarded("adapt", Need.ADMIN)
    async def adapt(self, request: Request, _context: Context) -> None:
        await self._queue_training(request, for_group=True)

    async def _queue_training(self, request: Request, for_group: bool) -> None:
        if (message := request.message) is None:
            return
        admin = request.member
        try:
            job_id = await request.run(request_job, admin, message.chat_id, for_group)
        except JobAlreadyRunning as exc:
            await message.reply_text(messages.RETRAIN_RUNNING.format(job_id=exc.job_id))
            return
        except NoLaboratory:
            await message.reply_text(messages.ADAPT_NO_GROUP)
            return
        except AccessDenied as exc:
            await message.reply_text(f"Cannot start: {exc}.")
            return
        action = "adapt" if for_group else "retrain"
        await request.run(audit, admin.telegram_id, action, True, f"job {job_id}",
                          admin.group_id if for_group else None)
        text = (messages.ADAPT_QUEUED.format(job_id=job_id, group=admin.group_name)
                if for_group else messages.RETRAIN_QUEUED.format(job_id=job_id))
        sent = await message.reply_text(text)
        await request.run(attach_message, job_id, sent.message_id)
        await asyncio.to_thread(self.services.queue.enqueue_retrain, job_id)

    @guarded("models", Need.ADMIN)
    async def models(self, request: Request, _context: Context) -> None:
        if request.message is None:
            return
        entries = await request.run(registry.list_models, 10, request.member)
        screen = self.services.settings.screen_model_path
        card = (await asyncio.to_thread(registry.screen_card, screen)
                if screen is not None else None)
        await reply_pages(request.message, messages.models_text(entries, card))

    @guarded("stats", Need.ADMIN)
    async def stats(self, request: Request, context: Context) -> None:
        if (message := request.message) is None:
            return
        member = request.member
        group_id = member.group_id
        # Owners answer for every laboratory; a laboratory's admins for their own.
        if context.args and member.is_owner:
            group_id = await request.run(group_id_named, context.args[0])
        if group_id is None:
            await message.reply_text(messages.STATS_NO_GROUP)
            return
        found = await request.run(standing, group_id)
        await reply_pages(message, messages.standing_text(found))

    @guarded("promote", Need.ADMIN)
    async def promote(self, request: Request, context: Context) -> None:
        if (message := request.message) is None:
            return
        if not context.args:
            await message.reply_text("Usage: /promote VERSION (see /models)")
            return
        try:
            ref = await request.run(registry.promote, context.args[0], request.member)
        except registry.RegistryError as exc:
            await message.reply_text(f"Cannot promote: {exc}.")
            return
        await request.run(audit, request.member.telegram_id, "promote", True, ref.version,
                          ref.group_id)
        await message.reply_text(f"▶️ {ref.version} is now active; workers switch on their "
                                 "next photo.")

    @guarded("rollback", Need.ADMIN)
    async def rollback(self, request: Request, _context: Context) -> None:
        if (message := request.message) is None:
            return
        try:
            # The version serving the admin's own laboratory: its own if it has one.
            restored, removed = await request.run(registry.rollback, request.member.group_id,
                                                  request.member)
        except registry.RegistryError as exc:
            await message.reply_text(f"Cannot roll back: {exc}.")
            return
        await request.run(audit, request.member.telegram_id, "rollback", True,
                          f"{removed.version} -> {restored.version}", removed.group_id)
        await message.reply_text(f"↩️ Rolled back from {removed.version}: {restored.version} is "
                                 "active again; workers switch on their next photo.")
