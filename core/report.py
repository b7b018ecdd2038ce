"""The case report a laboratory files: one summary page (its name, the case, the differential
with adult reference ranges and absolute counts, what awaits review and why, the photos not
analysed, the corrections, the reviewers, a sign-off line) and the photos' pictures six to a
page, redrawn with the experts' labels."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime

from PIL import Image

from core.cases import CaseDetail, Photo
from core.enums import SubmissionStatus
from core.reference_ranges import ADULT, SOURCE, outside
from vision.field.results import reasons_tally
from vision.findings import of_counts
from vision.labels import display_name, expert_name
from vision.plotting import headless_pyplot

NOTICE = ("Decision support only, not a diagnosis: a qualified person must confirm every result "
          "before it is used for patient care.")
A4 = (8.27, 11.69)
PHOTOS_PER_PAGE = 6
SIGN_OFF = "Reviewed and authorised by: ______________________________    Date: _____________"
PICTURE_MISSING = ("Picture not available: the stored photo is gone (deleted after the "
                   "retention period) or damaged. Its results are as recorded.")


def platelet_line(detail: CaseDetail) -> str:
    """The report's platelet line: withheld while the detectors' recall and precision against
    annotated platelets are below 0.90 (BENCHMARKS.md), since a count that fires on red cells'
    pallor is worse than none."""
    total = detail.platelet_total
    if total is None:
        return "Platelets: not estimated (assess on the smear)."
    return f"Platelets: {total} in {len(detail.photos)} photo(s)"


def differential_rows(detail: CaseDetail) -> list[list[str]]:
    """The summary table: cell, count, %, adult range (%), and with a white-cell count, the
    absolute count and its range (x 10^9/L); a value outside its range marked H or L."""
    found = of_counts(detail.totals)
    rows = []
    for label, count, percent in found.rows():
        found_range = ADULT.get(label)
        absolute = None if detail.wbc_per_nl is None else detail.wbc_per_nl * percent / 100
        row = [display_name(label), str(count), f"{percent:.1f}",
               found_range.percent_text() if found_range else ""]
        if detail.wbc_per_nl is not None:
            row += [f"{absolute:.2f}", found_range.absolute_text() if found_range else ""]
        row.append(outside(label, percent, absolute))
        rows.append(row)
    return rows


def photo_line(photo: Photo) -> str:
    """One photo in one line: when, what it holds, what awaits review and why."""
    counts = of_counts(photo.counts).summary()
    why = f" ({reasons_tally(photo.flag_reasons)})" if photo.flag_reasons else ""
    flagged = f"; {photo.flagged} to review{why}" if photo.flagged else ""
    return f"Photo {photo.number} · {photo.received_at:%H:%M}: {counts}{flagged}"


def case_pdf(detail: CaseDetail, pictures: Mapping[int, Image.Image | None], footer: str,
             platelets: str) -> bytes:
    """The report; ``pictures`` by photo number (None: gone), ``footer`` the laboratory's
    standing with the bot, ``platelets`` the line the platelet estimate gives."""
    plt = headless_pyplot()
    from matplotlib.backends.backend_pdf import PdfPages

    analysed = [p for p in detail.photos if p.status is SubmissionStatus.DONE]
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": f"{detail.laboratory}: case {detail.reference}",
                                    "Creator": "HematoVision"}) as pdf:
        pdf.savefig(_summary_page(plt, detail, footer, platelets))
        plt.close("all")
        for start in range(0, len(analysed), PHOTOS_PER_PAGE):
            pdf.savefig(_photo_page(plt, detail, analysed[start:start + PHOTOS_PER_PAGE],
                                    pictures, start // PHOTOS_PER_PAGE + 2))
            plt.close("all")
    return buffer.getvalue()


def _summary_page(plt: object, detail: CaseDetail, footer: str, platelets: str) -> object:
    figure = plt.figure(figsize=A4)  # type: ignore[attr-defined]
    found = of_counts(detail.totals)
    received = [p.received_at for p in detail.photos]
    y = 0.955
    figure.text(0.07, y, detail.laboratory, fontsize=16, weight="bold")
    y -= 0.025
    figure.text(0.07, y, "Peripheral blood smear: white-cell differential from photographs "
                "(HematoVision)", fontsize=10)
    y -= 0.03
    facts = [f"Case {detail.reference} · opened {detail.created_at:%Y-%m-%d %H:%M} UTC by "
             f"{detail.owner}"
             + (f" · photos {min(received):%Y-%m-%d %H:%M} to {max(received):%H:%M} UTC"
                if received else ""),
             f"Report generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]
    figure.text(0.07, y, "\n".join(facts), fontsize=9, va="top", linespacing=1.5)
    y -= 0.05
    if alert := found.alert():
        figure.text(0.07, y, alert.removeprefix("🚨 "), fontsize=11, weight="bold",
                    color="#b00020", va="top")
        y -= 0.03
    rows = differential_rows(detail)
    columns = ["White cell", "Count", "%", "Adult %"]
    if detail.wbc_per_nl is not None:
        columns += ["x10^9/L", "Adult x10^9/L"]
    columns.append("")
    height = 0.022 * (len(rows) + 1)
    axes = figure.add_axes((0.07, y - height, 0.86, height))
    axes.axis("off")
    table = axes.table(cellText=rows or [["no white cells"] + [""] * (len(columns) - 1)],
                       colLabels=columns, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1, 1.15)
    y -= height + 0.02
    wbc = (f"Total white-cell count (analyser): {detail.wbc_per_nl:g} x10^9/L"
           if detail.wbc_per_nl is not None else
           "Absolute counts: send the analyser's white-cell count with /wbc (e.g. /wbc 7.2).")
    reasons = detail.flag_reasons
    lines = [f"White cells counted: {found.white_cells} in {len(detail.photos)} photo(s)",
             *([line] if (line := found.smudge_line()) else []),
             wbc, platelets,
             f"Cells awaiting review: {detail.flagged}"
             + (f" ({reasons_tally(reasons)})" if reasons else "")
             + f" · expert corrections: {len(detail.corrections)}",
             f"Reviewed by: {', '.join(detail.reviewers) or 'nobody yet'}"]
    rejected = [p for p in detail.photos if p.status is SubmissionStatus.REJECTED]
    failed = [p for p in detail.photos if p.status not in (SubmissionStatus.DONE,
                                                            SubmissionStatus.REJECTED)]
    if rejected or failed:
        lines.append("Not analysed:")
        lines += [f"   Photo {p.number}: {p.rejection}" for p in rejected]
        lines += [f"   Photo {p.number}: {p.status.value}" for p in failed]
    if detail.corrections:
        lines.append("Expert corrections:")
        lines += [f"   Photo {c.photo_number} cell {c.cell_number}: "
                  f"{display_name(c.previous_label or '?')} -> {expert_name(c.label)} "
                  f"({c.reviewer}, {c.at:%Y-%m-%d %H:%M})" for c in detail.corrections[:12]]
        if len(detail.corrections) > 12:
            lines.append(f"   ... and {len(detail.corrections) - 12} more (in the CSV)")
    figure.text(0.07, y, "\n".join(lines), fontsize=8.5, va="top", linespacing=1.45)
    figure.text(0.07, 0.16, SIGN_OFF, fontsize=10)
    small = [footer, SOURCE, f"Models: {', '.join(detail.models_used) or 'none'}", NOTICE]
    figure.text(0.07, 0.115, "\n".join(s for s in small if s), fontsize=7, va="top",
                wrap=True, linespacing=1.4)
    figure.text(0.93, 0.02, "page 1", fontsize=7, ha="right")
    return figure


def _photo_page(plt: object, detail: CaseDetail, photos: list[Photo],
                pictures: Mapping[int, Image.Image | None], page: int) -> object:
    figure = plt.figure(figsize=A4)  # type: ignore[attr-defined]
    figure.text(0.07, 0.965, f"{detail.laboratory} · case {detail.reference} · photos",
                fontsize=9)
    width = 0.44  # of the page's width
    for index, photo in enumerate(photos):
        column, row = index % 2, index // 2
        left, top = 0.05 + 0.46 * column, 0.94 - 0.305 * row
        picture = pictures.get(photo.number)
        # As tall as the picture's shape asks (at most the slot), the line right under it.
        shape = picture.height / picture.width if picture is not None else 0.6
        height = min(0.25, width * shape * A4[0] / A4[1])
        axes = figure.add_axes((left, top - height, width, height))
        axes.axis("off")
        if picture is None:
            axes.text(0.5, 0.5, textwrap.fill(PICTURE_MISSING, 60), ha="center", va="center",
                      fontsize=7)
        else:
            axes.imshow(picture)
        figure.text(left, top - height - 0.008, textwrap.fill(photo_line(photo), 70),
                    fontsize=7, va="top")
    figure.text(0.93, 0.02, f"page {page}", fontsize=7, ha="right")
    return figure

