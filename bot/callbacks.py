"""Inline-button presses. The data names a row by id; core re-checks that it is the user's."""

from __future__ import annotations

import asyncio
import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from core.access import AccessDenied, audit, decide
from core.cases import case_detail, history
from core.export import export_case
from core.labels import PBC_CLASSES
from core.reviews import confirm, correct, reviewable_cell, reviewable_cells

from . import keyboards, messages
from .guard import Need, authorise, refuse
from .handlers import Handlers

log = logging.getLogger(__name__)


def _message(query: CallbackQuery) -> Message | None:
    # A button on a message too old for the bot to see arrives without a usable message.
    return query.message if isinstance(query.message, Message) else None


class Callbacks:
    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self.services = handlers.services

    async def dispatch(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not query.data:
            return
        kind, _, rest = query.data.partition(":")
        handler = {"acc": self.access, "hist": self.history_page, "case": self.case,
                   "exp": self.export, "ok": self.confirm, "fix": self.review_menu,
                   "cell": self.class_menu, "set": self.set_label}.get(kind)
        try:
            parts = [int(part) for part in rest.split(":")] if rest else []
            if handler is None or not parts:
                raise ValueError(query.data)
            await handler(update, parts)
        except (ValueError, IndexError, AccessDenied) as exc:
            # Forged or stale button data: the same answer as for anything not theirs.
            log.info("callback %r refused: %s", query.data, exc)
            await refuse(update, messages.NOT_FOUND)

    async def access(self, update: Update, parts: list[int]) -> None:
        admin = await authorise(update, self.services, "access decision", Need.ADMIN)
        query = update.callback_query
        if admin is None or query is None:
            return
        user_id, code = parts
        role = keyboards.DECISIONS[code]
        decided = await asyncio.to_thread(decide, self.services.sessions, admin, user_id, role)
        await asyncio.to_thread(audit, self.services.sessions, admin.telegram_id,
                                "access decision", True, f"{decided.telegram_id} -> {role.value}")
        await _respond(query, messages.access_decided(decided, admin), edit=True)
        text = messages.access_granted(decided) if decided.approved else messages.DENIED
        await query.get_bot().send_message(decided.telegram_id, text)

    async def history_page(self, update: Update, parts: list[int]) -> None:
        member = await authorise(update, self.services, "history")
        if member is None or (query := update.callback_query) is None:
            return
        page = await asyncio.to_thread(history, self.services.sessions, member, parts[0])
        await _respond(query, messages.history_text(page), keyboards.history(page), edit=True)

    async def case(self, update: Update, parts: list[int]) -> None:
        member = await authorise(update, self.services, "case")
        if member is None or (query := update.callback_query) is None:
            return
        detail = await asyncio.to_thread(case_detail, self.services.sessions, member, parts[0])
        if detail is None:
            raise AccessDenied("no such case in the member's group")
        if (message := _message(query)) is None:
            await query.answer(messages.STALE_BUTTON, show_alert=True)
            return
        await query.answer()
        await self.handlers.show_case(message, detail)

    async def export(self, update: Update, parts: list[int]) -> None:
        member = await authorise(update, self.services, "export")
        if member is None or (query := update.callback_query) is None:
            return
        exported = await asyncio.to_thread(export_case, self.services.sessions, member,
                                           self.services.store, parts[0])
        if (message := _message(query)) is None:
            await query.answer(messages.STALE_BUTTON, show_alert=True)
            return
        await query.answer()
        await self.handlers.send_export(message, exported)

    async def confirm(self, update: Update, parts: list[int]) -> None:
        reviewer = await authorise(update, self.services, "confirm", Need.REVIEWER)
        if reviewer is None or (query := update.callback_query) is None:
            return
        count = await asyncio.to_thread(confirm, self.services.sessions, reviewer, parts[0])
        await _respond(query, messages.confirmed(count, reviewer),
                       answer=messages.confirmed(count, reviewer))

    async def review_menu(self, update: Update, parts: list[int]) -> None:
        reviewer = await authorise(update, self.services, "correct", Need.REVIEWER)
        if reviewer is None or (query := update.callback_query) is None:
            return
        cells = await asyncio.to_thread(reviewable_cells, self.services.sessions, reviewer,
                                        parts[0])
        await _respond(query, messages.review_menu(cells), keyboards.cell_choice(cells))

    async def class_menu(self, update: Update, parts: list[int]) -> None:
        reviewer = await authorise(update, self.services, "correct", Need.REVIEWER)
        if reviewer is None or (query := update.callback_query) is None:
            return
        cell = await asyncio.to_thread(reviewable_cell, self.services.sessions, reviewer,
                                       parts[0])
        await _respond(query, messages.class_menu(cell), keyboards.class_choice(cell.cell_id),
                       edit=True)

    async def set_label(self, update: Update, parts: list[int]) -> None:
        reviewer = await authorise(update, self.services, "correct", Need.REVIEWER)
        if reviewer is None or (query := update.callback_query) is None:
            return
        cell_id, class_index = parts
        result = await asyncio.to_thread(correct, self.services.sessions, reviewer, cell_id,
                                         PBC_CLASSES[class_index])
        await _respond(query, messages.corrected(result, reviewer), edit=True, answer="Stored")


async def _respond(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None,
                   *, edit: bool = False, answer: str | None = None) -> None:
    """Answer the press, then edit its message or reply below it."""
    message = _message(query)
    if message is None:
        await query.answer(messages.STALE_BUTTON, show_alert=True)
        return
    await query.answer(answer)
    if edit:
        await query.edit_message_text(text, reply_markup=markup)
    else:
        await message.reply_text(text, reply_markup=markup)
