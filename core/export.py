"""A case as files: a CSV of every cell and the PDF report (``core.report``)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.access import AccessDenied, Member
from core.cases import CaseDetail, case_detail, person_name
from core.db.models import CellResult, LabelReview
from core.db.session import SessionFactory
from core.laboratory import Standing, group_id_named, standing
from core.report import case_pdf, platelet_line
from core.report_pictures import report_pictures
from core.storage import ImageStore
from vision.field.results import in_clinical_order
from vision.labels import display_name
from vision.plotting import headless_pyplot

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
            .options(selectinload(CellResult.reviews).selectinload(LabelReview.reviewer),
                     selectinload(CellResult.model_version))
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
                "reviewed_by": "" if last is None else person_name(last.reviewer),
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


def standing_footer(found: Standing) -> str:
    """The laboratory's agreement with the bot, on every page of its reports."""
    return (f"{found.group}'s experts kept the bot's first answer for "
            f"{found.agreement.overall.text()} reviewed cells (serving {found.version or '-'}). "
            f"{found.trust.summary()}")


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
                      case_pdf(detail, report_pictures(factory, store, detail), footer,
                               platelet_line(detail)))
