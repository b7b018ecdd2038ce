"""Every text the bot sends, in one place."""

from __future__ import annotations

from core.db.models import SubmissionStatus
from core.labels import display_name
from core.submissions import Delivery

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


def too_large(size: int, limit: int) -> str:
    return (
        f"This file is {size / 1e6:.1f} MB; I can accept files up to {limit / 1e6:.0f} MB. "
        "Please send a smaller image."
    )


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def result_text(delivery: Delivery) -> str:
    if delivery.status is SubmissionStatus.REJECTED:
        return f"❌ I could not analyse this file.\n{delivery.error}"
    if delivery.status is SubmissionStatus.FAILED:
        return (
            "❌ Sorry, the analysis of this image failed on our side. It has been recorded; "
            "please send the image again."
        )
    if not delivery.cells:
        return "No cells recognised in this image.\n\n" + DISCLAIMER
    lines = ["🔬 Result"]
    for cell in delivery.cells:
        prefix = f"Cell {cell.index + 1}: " if len(delivery.cells) > 1 else ""
        lines.append(f"{prefix}{display_name(cell.label)}: {_percent(cell.confidence)}")
        alternatives = [
            f"{display_name(str(alt['label']))} {_percent(float(alt['confidence']))}"
            for alt in cell.top3[1:]
        ]
        if alternatives:
            lines.append("   next: " + ", ".join(alternatives))
    lines.append("")
    lines.append(f"Model: {delivery.model_version}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
