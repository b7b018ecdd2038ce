"""Inline-button presses. The data names a row by id; core re-checks that it is the user's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError

from core import registry
from core.access import AccessDenied, audit, decide
from core.cases import case_detail, history
from core.export import export_case
from core.laboratory import propose_adaptation
from core.retraining.jobs import job_candidate
from core.reviews import PhotoGone, confirm, correct, reviewable_cell, reviewable_cells
from vision.labels import EXPERT_LABELS

from . import keyboards, messages
from .guard import Context, Need, Request, admit, refuse
from .handlers import Handlers
from .replies import reply_pages

log = logging.getLogger(__name__)
Press = Callable[[Request, CallbackQuery, list[int]], Awaitable[None]]
# Button data is client-supplied: numbers are plain ASCII digits within what the columns hold
# (row ids are 32-bit; a Telegram user id, in "acc", up to 52 bits), in exactly the count the
# button kind has. Anything else ("-1", "+1", " 1", "١", "1_0", 20 digits) is forged.
ROW_ID_MAX = 2**31 - 1
USER_ID_MAX = 2**52
ARITY = {"acc": 2, "hist": 1, "case": 1, "exp": 1, "ok": 1, "fix": 1, "cell": 1, "set": 2,
         "mp": 1, "md": 1, "cx": 1}


def parse_numbers(kind: str, rest: str) -> list[int]:
    """The button's numbers, or ValueError for anything a button of ours never carries."""
    parts = rest.split(":")
    if len(parts) != ARITY.get(kind, -1):
        raise ValueError(f"{kind!r} takes {ARITY.get(kind)} number(s)")
    numbers = []
    for position, part in enumerate(parts):
        if not (0 < len(part) <= 16 and part.isascii() and part.isdigit()):
            raise ValueError(f"not a plain number: {part!r}")
        limit = USER_ID_MAX if kind == "acc" and position == 0 else ROW_ID_MAX
        if (number := int(part)) > limit:
            raise ValueError(f"out of range: {part!r}")
        numbers.append(number)
    return numbers


def _message(query: CallbackQuery) -> Message | None:
    # A button on a message too old for the bot to see arrives without a usable message.
    return query.message if isinstance(query.message, Message) else None


class Callbacks:
    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self.services = handlers.services
        # Button kind -> what it does, the action it is logged as, and who may press it.
        self.buttons: dict[str, tuple[Press, str, Need]] = {
            "acc": (self.access, "access decision", Need.ADMIN),
            "hist": (self.history_page, "history", Need.MEMBER),
            "case": (self.case, "case", Need.MEMBER),
            "exp": (self.export, "export", Need.MEMBER),
            "ok": (self.confirm, "confirm", Need.REVIEWER),
            "fix": (self.review_menu, "correct", Need.REVIEWER),
            "cell": (self.class_menu, "correct", Need.REVIEWER),
            "set": (self.set_label, "correct", Need.REVIEWER),
            "cx": (self.cancel_correction, "correct", Need.REVIEWER),
            "mp": (self.promote_candidate, "promote", Need.ADMIN),
            "md": (self.discard_candidate, "discard", Need.ADMIN),
        }

    async def dispatch(self, update: Update, _context: Context) -> None:
        query = update.callback_query
        if query is None or not query.data:
            return
        kind, _, rest = query.data.partition(":")
        try:
            if kind not in self.buttons:
                raise ValueError(query.data)
            parts = parse_numbers(kind, rest)
            press, action, need = self.buttons[kind]
            if (request := await admit(update, self.services, action, need)) is not None:
                await press(request, query, parts)
        except PhotoGone as exc:
            log.info("callback %r refused: %s", query.data, exc)
            await refuse(update, messages.PHOTO_GONE)
        except (ValueError, IndexError, KeyError, AccessDenied) as exc:
            # Forged or stale button data: the same answer as for anything not theirs.
            log.info("callback %r refused: %s", query.data, exc)
            await refuse(update, messages.NOT_FOUND)

    async def access(self, request: Request, query: CallbackQuery, parts: list[int]) -> None:
        user_id, code = parts
        role = keyboards.DECISIONS[code]
        admin = request.member
        decided = await request.run(decide, admin, user_id, role)
        await request.run(audit, admin.telegram_id, "access decision", True,
                          f"{decided.telegram_id} -> {role.value}", decided.group_id)
        await _respond(query, messages.access_decided(decided, admin), edit=True)
        text = messages.access_granted(decided) if decided.approved else messages.DENIED
        await query.get_bot().send_message(decided.telegram_id, text)

    async def history_page(self, request: Request, query: CallbackQuery,
                           parts: list[int]) -> None:
        page = await request.run(history, request.member, parts[0])
        await _respond(query, messages.history_text(page), keyboards.history(page), edit=True)

    async def case(self, request: Request, query: CallbackQuery, parts: list[int]) -> None:
        detail = await request.run(case_detail, request.member, parts[0])
        if detail is None:
            raise AccessDenied("no such case in the member's group")
        if (message := _message(query)) is None:
            await query.answer(messages.STALE_BUTTON, show_alert=True)
            return
        await query.answer()
        await self.handlers.show_case(message, detail)

    async def export(self, request: Request, query: CallbackQuery, parts: list[int]) -> None:
        exported = await request.run(export_case, request.member, self.services.store,
                                     parts[0])
        if (message := _message(query)) is None:
            await query.answer(messages.STALE_BUTTON, show_alert=True)
            return
        await query.answer()
        await self.handlers.send_export(message, exported)

    async def confirm(self, request: Request, query: CallbackQuery, parts: list[int]) -> None:
        count = await request.run(confirm, request.member, parts[0])
        text = messages.confirmed(count, request.member)
        await _respond(query, text, answer=text)
        await self._propose(request, query)

    async def review_menu(self, request: Request, query: CallbackQuery,
                          parts: list[int]) -> None:
        cells = await request.run(reviewable_cells, request.member, parts[0])
        await _respond(query, messages.review_menu(cells), keyboards.cell_choice(cells))

    async def class_menu(self, request: Request, query: CallbackQuery,
                         parts: list[int]) -> None:
        cell = await request.run(reviewable_cell, request.member, parts[0])
        await _respond(query, messages.class_menu(cell), keyboards.class_choice(cell.cell_id),
                       edit=True)

    async def set_label(self, request: Request, query: CallbackQuery, parts: list[int]) -> None:
        cell_id, class_index = parts
        if class_index >= len(EXPERT_LABELS):
            raise ValueError(f"no class {class_index}")
        result = await request.run(correct, request.member, cell_id, EXPERT_LABELS[class_index])
        await _respond(query, messages.corrected(result, request.member), edit=True,
                       answer="Stored")
        await self._propose(request, query)

    async def cancel_correction(self, request: Request, query: CallbackQuery,
                                parts: list[int]) -> None:
        cell = await request.run(reviewable_cell, request.member, parts[0])
        await _respond(query, messages.correction_cancelled(cell), edit=True,
                       answer="Cancelled")

    async def promote_candidate(self, request: Request, query: CallbackQuery,
                                parts: list[int]) -> None:
        await self._decide_candidate(request, query, parts[0], registry.promote, "promote")

    async def discard_candidate(self, request: Request, query: CallbackQuery,
                                parts: list[int]) -> None:
        await self._decide_candidate(request, query, parts[0], registry.discard, "discard")

    async def _decide_candidate(self, request: Request, query: CallbackQuery, job_id: int,
                                act: Callable[..., registry.ModelRef], action: str) -> None:
        version = await request.run(job_candidate, job_id)
        try:
            ref = await request.run(act, version, request.member)
        except registry.RegistryError as exc:
            await _respond(query, f"Cannot {action}: {exc}.", answer=f"Cannot {action}")
            return
        await request.run(audit, request.member.telegram_id, action, True, ref.version,
                          ref.group_id)
        await _respond(query, messages.candidate_decided(ref.version, action, request.member),
                       answer="Done")

    async def _propose(self, request: Request, query: CallbackQuery) -> None:
        """Tell the laboratory's admins, once, when its experts' reviews make an adaptation
        worth running."""
        proposal = await request.run(propose_adaptation, request.member.group_id,
                                     self.services.settings.propose_adaptation_after)
        if proposal is None:
            return
        text = messages.adaptation_proposed(proposal)
        for chat_id in proposal.admin_chat_ids:
            try:
                await query.get_bot().send_message(chat_id, text)
            except TelegramError as exc:  # an admin who blocked the bot must not stop the rest
                log.warning("adaptation proposal to %s not delivered: %s", chat_id, exc)


async def _respond(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None,
                   *, edit: bool = False, answer: str | None = None) -> None:
    """Answer the press, then edit its message or reply below it."""
    message = _message(query)
    if message is None:
        await query.answer(messages.STALE_BUTTON, show_alert=True)
        return
    await query.answer(None if answer is None else messages.fit(answer, messages.ANSWER_LIMIT))
    if edit:
        await query.edit_message_text(messages.fit(text), reply_markup=markup)
    else:
        await reply_pages(message, text, markup)
