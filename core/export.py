"""A case as files: a CSV of every cell and a PDF report (table, chart, annotated photos)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.access import AccessDenied, Member
from core.cases import CaseDetail, case_detail
from core.db.models import CellResult
from core.db.session import SessionFactory
from core.laboratory import Standing, group_id_named, standing
from core.storage import BlobError, ImageStore
from vision.field.results import in_clinical_order, reasons_tally
from vision.findings import of_counts
from vision.labels import display_name
from vision.plotting import headless_pyplot

NOTICE = ("Decision support only, not a diagnosis: a qualified person must confirm every result "
          "before it is used for patient care.")
CSV_COLUMNS = ["case", "photo", "submission_id", "received_at", "cell", "kind", "label",
               "confidence", "expert_label", "reviewed_by", "review_flag", "at_border",
               "x0", "y0", "x1", "y1", "model_version"]


@dataclass(frozen=True)
class CaseExport:
    reference: str
    csv_bytes: bytes
    pdf_bytes: bytes

    @property
    def stem(self) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.reference)
        return f"case-{safe}"


def _cell_rows(factory: SessionFactory, detail: CaseDetail) -> list[dict[str, object]]:
    photos = {p.submission_id: p for p in detail.photos}
    with factory() as session:
        cells = session.scalars(
            select(CellResult).where(CellResult.submission_id.in_(photos))
            .options(selectinload(CellResult.reviews), selectinload(CellResult.model_version))
            .order_by(CellResult.submission_id, CellResult.index)).all()
        rows = []
        for cell in cells:
            last = cell.reviews[-1] if cell.reviews else None
            photo = photos[cell.submission_id]
            rows.append({
                "case": detail.reference, "photo": photo.number,
                "submission_id": cell.submission_id,
                "received_at": photo.received_at.isoformat(timespec="seconds"),
                "cell": cell.index + 1, "kind": cell.kind, "label": cell.label or "",
                "confidence": "" if cell.confidence is None else f"{cell.confidence:.4f}",
                "expert_label": cell.expert_label or "",
                "reviewed_by": "" if last is None else str(last.reviewer_id),
                "review_flag": int(cell.review), "at_border": int(cell.at_border),
                "x0": cell.box_x0, "y0": cell.box_y0, "x1": cell.box_x1, "y1": cell.box_y1,
                "model_version": cell.model_version.version,
            })
    return rows


def case_csv(rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


PICTURE_MISSING = ("Picture not available: the stored photo is gone (deleted after the "
                   "retention period) or damaged. Its results below are as recorded.")


def standing_footer(found: Standing) -> str:
    """The laboratory's agreement with the bot, on every page of its reports."""
    return (f"{found.group}'s experts kept the bot's first answer for "
            f"{found.agreement.overall.text()} reviewed cells (serving {found.version or '-'}). "
            f"{found.trust.summary()}")


def case_pdf(detail: CaseDetail, store: ImageStore, footer: str = "") -> bytes:
    plt = headless_pyplot()
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": f"HematoVision case {detail.reference}",
                                    "Creator": "HematoVision"}) as pdf:
        pdf.savefig(_summary_page(plt, detail, footer))
        plt.close("all")
        for photo in detail.photos:
            sha = photo.annotated_sha256 or photo.image_sha256
            if sha is None:
                continue
            try:
                picture: Image.Image | None = store.open(sha)
            except (BlobError, OSError):
                picture = None  # a missing or corrupted picture is never drawn, but said
            figure = plt.figure(figsize=(8.27, 11.69))
            figure.suptitle(f"Photo {photo.number} · {photo.received_at:%Y-%m-%d %H:%M} UTC · "
                            f"{photo.model_version or 'no model'}", fontsize=11)
            axes = figure.add_axes((0.05, 0.25, 0.9, 0.68))
            axes.axis("off")
            if picture is None:
                axes.text(0.5, 0.5, PICTURE_MISSING, ha="center", va="center", fontsize=11,
                          wrap=True)
            else:
                axes.imshow(_thumbnail(picture))
            counts = ", ".join(f"{display_name(k)} {v}" for k, v in in_clinical_order(photo.counts))
            figure.text(0.05, 0.2, f"White cells: {counts or 'none'}\n"
                        f"Red cells: {photo.rbc_count or 0} · Platelets: "
                        f"{photo.platelet_count or 0} · Flagged for review: {photo.flagged}"
                        + (f" ({reasons_tally(photo.flag_reasons)})" if photo.flag_reasons
                           else ""),
                        fontsize=9, va="top")
            figure.text(0.05, 0.075, footer, fontsize=7, wrap=True)
            figure.text(0.05, 0.04, NOTICE, fontsize=7, wrap=True)
            pdf.savefig(figure)
            plt.close(figure)
    return buffer.getvalue()


def _thumbnail(image: Image.Image, side: int = 1600) -> Image.Image:
    copy = image.convert("RGB")
    copy.thumbnail((side, side))
    return copy


def _summary_page(plt: object, detail: CaseDetail, footer: str) -> object:
    figure = plt.figure(figsize=(8.27, 11.69))  # type: ignore[attr-defined]
    found = of_counts(detail.totals)
    totals = [(label, count) for label, count, _percent in found.rows()]
    total = sum(count for _label, count in totals)
    figure.text(0.07, 0.95, f"HematoVision case report: {detail.reference}", fontsize=16,
                weight="bold")
    if alert := found.alert():
        # Before everything else on the page: the finding a haematologist must see first.
        figure.text(0.07, 0.982, alert.removeprefix("🚨 "), fontsize=11, weight="bold",
                    color="#b00020")
    facts = [
        f"Laboratory group: {detail.group}",
        f"Opened: {detail.created_at:%Y-%m-%d %H:%M} UTC by {detail.owner}",
        f"Photos: {len(detail.photos)} · white cells: {total} · red cells: {detail.rbc_total} "
        f"· platelets: {detail.platelet_total}",
        *([line] if (line := found.smudge_line()) else []),
        f"Cells flagged for review: {detail.flagged} · expert corrections: "
        f"{len(detail.corrections)}",
        f"Model version(s): {', '.join(detail.model_versions) or 'none'}"
        + (f" · red cells: {', '.join(detail.red_cell_models)}" if detail.red_cell_models
           else ""),
        f"Report generated: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    figure.text(0.07, 0.925, "\n".join(facts), fontsize=9.5, va="top", linespacing=1.6)
    table_axes = figure.add_axes((0.07, 0.52, 0.4, 0.25))
    table_axes.axis("off")
    rows = [[display_name(label), str(count), f"{100 * count / total:.1f}%"]
            for label, count in totals] or [["no white cells", "", ""]]
    table = table_axes.table(cellText=rows, colLabels=["White cell", "Count", "%"],
                             loc="upper left", colWidths=[0.6, 0.2, 0.2])
    table.scale(1, 1.4)
    table_axes.set_title("Differential (sum over the photos)", fontsize=10, loc="left")
    _differential_bars(figure.add_axes((0.62, 0.55, 0.33, 0.2)), totals)
    if detail.corrections:
        lines = [f"Photo {c.photo_number} cell {c.cell_number}: "
                 f"{display_name(c.previous_label or '?')} -> {display_name(c.label)} "
                 f"({c.reviewer}, {c.at:%Y-%m-%d %H:%M})" for c in detail.corrections[:20]]
        figure.text(0.07, 0.47, "Expert corrections\n" + "\n".join(lines), fontsize=8.5,
                    va="top", linespacing=1.5)
    figure.text(0.07, 0.09, footer, fontsize=8, wrap=True)
    figure.text(0.07, 0.05, NOTICE, fontsize=8, wrap=True, style="italic")
    return figure


def _differential_bars(axes: object, totals: list[tuple[str, int]]) -> None:
    total = sum(count for _label, count in totals)
    if totals:
        axes.barh([display_name(label) for label, _ in totals][::-1],  # type: ignore[attr-defined]
                  [100 * count / total for _, count in totals][::-1], color="#7a3b8f")
        axes.set_xlabel("% of white cells")  # type: ignore[attr-defined]
    axes.set_title("Differential", fontsize=10)  # type: ignore[attr-defined]


def differential_chart_png(detail: CaseDetail) -> bytes:
    """The case's summed differential as a small bar chart, for the chat."""
    plt = headless_pyplot()
    totals = in_clinical_order(detail.totals)
    figure = plt.figure(figsize=(5.0, 0.6 + 0.35 * max(1, len(totals))), dpi=120)
    axes = figure.add_axes((0.38, 0.25, 0.57, 0.6))
    _differential_bars(axes, totals)
    for index, (_label, count) in enumerate(totals[::-1]):
        axes.text(0.5, index, str(count), va="center", color="white", fontsize=8)
    axes.set_title(f"Case {detail.reference}: {sum(c for _l, c in totals)} white cells, "
                   f"{len(detail.photos)} photo(s)", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def export_case(factory: SessionFactory, member: Member, store: ImageStore,
                case_id: int) -> CaseExport:
    detail = case_detail(factory, member, case_id)
    if detail is None:
        raise AccessDenied("no such case in your laboratory")
    group_id = group_id_named(factory, detail.group)
    footer = standing_footer(standing(factory, group_id)) if group_id is not None else ""
    return CaseExport(detail.reference, case_csv(_cell_rows(factory, detail)),
                      case_pdf(detail, store, footer))
