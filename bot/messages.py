"""Every text the bot sends, in one place."""

from __future__ import annotations

from core.db.models import SubmissionStatus
from core.field.analyse import CLINICAL_ORDER
from core.labels import display_name
from core.submissions import CellView, Delivery

DISCLAIMER = (
    "⚠️ Decision support only, not a diagnosis: a qualified person must confirm every result."
)

WELCOME = (
    "Welcome to HematoVision 🔬\n\n"
    "Send me a photo of a stained peripheral blood smear (or of a single white cell) taken "
    "through the microscope, and I will classify the cells and tell you how confident I am.\n\n"
    "Best results: send the image as a file (📎 → File) so it keeps its full resolution.\n\n"
    + DISCLAIMER
)

HELP = (
    "How to use HematoVision:\n"
    "• Send a photo of a stained blood smear or a single cell.\n"
    "• Sending it as a file (📎 → File) keeps the original resolution: this works best.\n"
    "• Accepted: JPEG, PNG, WebP, TIFF up to 20 MB.\n"
    "• I reply with each cell's label and confidence.\n\n"
    "Commands: /start, /help\n\n" + DISCLAIMER
)

NOT_A_PHOTO = (
    "I can only analyse images. Please send a photo of a stained blood smear, ideally as a "
    "file (📎 → File) to keep its full resolution. /help explains more."
)

ACK_PHOTO = (
    "📥 Received, analysing…\n"
    "Tip: sending the image as a file (📎 → File) keeps its full resolution and gives better "
    "results."
)
ACK_DOCUMENT = "📥 Received, analysing…"

DOWNLOAD_FAILED = (
    "I could not download this file from Telegram. Please send it again in a moment."
)


def too_large(size: int, limit: int) -> str:
    return (
        f"This file is {size / 1e6:.1f} MB; I can accept files up to {limit / 1e6:.0f} MB. "
        "Please send a smaller image."
    )


def picture_caption(delivery: Delivery) -> str:
    return (f"Numbered white cells, red cells (red circles) and platelets (cyan). "
            f"{len(delivery.classified)} white cell(s), {delivery.rbc_count} red cells, "
            f"{delivery.platelet_count} platelets.")


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def result_text(delivery: Delivery) -> str:
    if delivery.status is SubmissionStatus.REJECTED:
        return f"❌ I could not analyse this image.\n{delivery.error}"
    if delivery.status is SubmissionStatus.FAILED:
        return (
            "❌ Sorry, the analysis of this image failed on our side. It has been recorded; "
            "please send the image again."
        )
    lines = _field_lines(delivery) if delivery.mode == "field" else _cell_lines(delivery)
    lines += ["", f"Model: {delivery.model_version}", DISCLAIMER]
    return "\n".join(lines)


def _label_line(cell: CellView) -> str:
    text = f"{display_name(cell.label or '')}: {_percent(cell.confidence or 0.0)}"
    if cell.review:
        text += "  ⚠️ please review"
    return text


def _alternatives(cell: CellView) -> str:
    return ", ".join(f"{display_name(str(alt['label']))} {_percent(float(alt['confidence']))}"
                     for alt in cell.top3[1:])


def _cell_lines(delivery: Delivery) -> list[str]:
    cells = delivery.classified
    if not cells:
        return ["No cells recognised in this image."]
    lines = ["🔬 Result"]
    for number, cell in enumerate(cells, start=1):
        prefix = f"Cell {number}: " if len(cells) > 1 else ""
        lines.append(prefix + _label_line(cell))
        if cell.label == "not_recognised":
            lines.append("   This does not look like a stained blood cell.")
        elif alternatives := _alternatives(cell):
            lines.append(f"   next: {alternatives}")
    return lines


def _field_lines(delivery: Delivery) -> list[str]:
    cells = delivery.classified
    lines = ["🔬 Field analysis",
             f"White cells: {len(cells)} · Red cells: {delivery.rbc_count} · "
             f"Platelets: {delivery.platelet_count}"]
    if not cells:
        lines.append("No white cell found in this field.")
        return lines
    counts: dict[str, int] = {}
    for cell in cells:
        if cell.label != "not_recognised":
            counts[cell.label or ""] = counts.get(cell.label or "", 0) + 1
    total = sum(counts.values())
    if total:
        lines.append("Differential:")
        for label in [k for k in CLINICAL_ORDER if k in counts]:
            lines.append(f"   {display_name(label)}: {counts[label]} "
                         f"({100 * counts[label] / total:.0f}%)")
    lines.append("Cells (numbered as in the picture):")
    lines += [f"   {n}. {_label_line(cell)}" for n, cell in enumerate(cells, start=1)]
    return lines
