"""Inline keyboards. Callback data names rows by id only; every use is re-checked server-side."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from core.cases import HistoryPage
from core.enums import Role
from core.reviews import ReviewableCell
from vision.field.results import in_clinical_order
from vision.labels import ALL_CLASSES, ARTEFACT, EXPERT_LABELS, NOT_RECOGNISED, display_name

# Button data carries numbers only; these are the access decisions' codes.
DECISIONS: tuple[Role, ...] = (Role.DENIED, Role.USER, Role.REVIEWER)


def access_decision(user_id: int) -> InlineKeyboardMarkup:
    code = {role: index for index, role in enumerate(DECISIONS)}
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("✅ User", callback_data=f"acc:{user_id}:{code[Role.USER]}"),
        InlineKeyboardButton("✅ Reviewer",
                             callback_data=f"acc:{user_id}:{code[Role.REVIEWER]}"),
        InlineKeyboardButton("⛔ Deny", callback_data=f"acc:{user_id}:{code[Role.DENIED]}"),
    ]])


def result_review(submission_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("✅ Confirm", callback_data=f"ok:{submission_id}"),
        InlineKeyboardButton("✏️ Correct a label", callback_data=f"fix:{submission_id}"),
    ]])


def album_review(submission_ids: list[tuple[int, int]]) -> InlineKeyboardMarkup:
    """Confirm or correct each photo of an album: (photo number, submission id) pairs."""
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(f"✅ Confirm photo {number}", callback_data=f"ok:{submission_id}"),
        InlineKeyboardButton(f"✏️ Correct photo {number}", callback_data=f"fix:{submission_id}"),
    ] for number, submission_id in submission_ids])


def cell_choice(cells: list[ReviewableCell]) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(
        f"{c.number}. {display_name(c.expert_label or c.label or '?')}",
        callback_data=f"cell:{c.cell_id}") for c in cells]
    return InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)])


def class_choice(cell_id: int) -> InlineKeyboardMarkup:
    # Offered in clinical order; the button carries the label's fixed index in EXPERT_LABELS.
    buttons = [InlineKeyboardButton(display_name(label),
                                    callback_data=f"set:{cell_id}:{EXPERT_LABELS.index(label)}")
               for label, _ in in_clinical_order(dict.fromkeys(ALL_CLASSES, 0))]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([
        InlineKeyboardButton(
            f"🚫 {ARTEFACT}",
            callback_data=f"set:{cell_id}:{EXPERT_LABELS.index(NOT_RECOGNISED)}"),
        InlineKeyboardButton("✖️ Cancel", callback_data=f"cx:{cell_id}")])
    return InlineKeyboardMarkup(rows)


def history(page: HistoryPage) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(line.reference, callback_data=f"case:{line.case_id}")]
            for line in page.lines]
    nav = []
    if page.page > 0:
        nav.append(InlineKeyboardButton("◀️ Newer", callback_data=f"hist:{page.page - 1}"))
    if page.page + 1 < page.pages:
        nav.append(InlineKeyboardButton("Older ▶️", callback_data=f"hist:{page.page + 1}"))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


def case_actions(case_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("📄 Export CSV + PDF", callback_data=f"exp:{case_id}"),
    ]])


def candidate_decision(job_id: int) -> InlineKeyboardMarkup:
    """For a candidate the gate kept back: the admin decides."""
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("▶️ Promote anyway", callback_data=f"mp:{job_id}"),
        InlineKeyboardButton("🗑 Discard", callback_data=f"md:{job_id}"),
    ]])
