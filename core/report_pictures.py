"""A case's pictures for its report: each analysed photo's annotated picture, redrawn from the
stored photo with the experts' labels where any cell was reviewed (the stored picture shows the
labels the bot first gave)."""

from __future__ import annotations

from PIL import Image
from sqlalchemy import select

from core.cases import CaseDetail, Photo
from core.db.models import CellResult
from core.db.session import SessionFactory
from core.enums import SubmissionStatus
from core.storage import BlobError, ImageStore
from core.submissions import caption_of
from vision.field.annotate import annotate
from vision.field.results import Analysis, Cell
from vision.findings import differential

# The report prints a picture about 9 cm wide: more pixels only grow the file.
REPORT_SIDE = 1400


def reviewed_analysis(photo: Photo, rows: list[CellResult]) -> Analysis:
    """The photo's analysis as its cells now stand: an expert's label where one was given
    (flag cleared), the bot's otherwise."""
    cells = []
    for row in rows:
        reviewed = row.expert_label is not None
        cells.append(Cell(row.kind, (row.box_x0, row.box_y0, row.box_x1, row.box_y1),
                          row.at_border, row.final_label, row.confidence, (),
                          review=row.review and not reviewed,
                          reasons=() if reviewed else tuple(row.review_reasons or ()),
                          reviewed=reviewed))
    return Analysis(photo.mode or "field", 0, 0, cells, differential(cells),
                    rbc_count=photo.rbc_count or 0, platelet_count=photo.platelet_count,
                    quality=None, model=photo.model_version or "",
                    red_cell_model=photo.red_cell_model)


def report_pictures(factory: SessionFactory, store: ImageStore, detail: CaseDetail,
                    ) -> dict[int, Image.Image | None]:
    """Photo number -> its picture for the report (None where the stored photo is gone)."""
    done = [p for p in detail.photos if p.status is SubmissionStatus.DONE]
    with factory() as session:
        rows = session.scalars(select(CellResult).where(
            CellResult.submission_id.in_([p.submission_id for p in done]))
            .order_by(CellResult.submission_id, CellResult.index)).all()
    # Read, the rows are plain values: the photos are opened and drawn with the session closed.
    by_photo: dict[int, list[CellResult]] = {}
    for row in rows:
        by_photo.setdefault(row.submission_id, []).append(row)
    return {photo.number: _picture(store, detail, photo, by_photo.get(photo.submission_id, []))
            for photo in done}


def _picture(store: ImageStore, detail: CaseDetail, photo: Photo,
             cells: list[CellResult]) -> Image.Image | None:
    # A close-up is shown as it was sent: its one cell's label is in the line under it.
    redraw = photo.mode == "field" and (any(c.expert_label is not None for c in cells)
                                        or photo.annotated_sha256 is None)
    sha = photo.annotated_sha256 if photo.mode == "field" and not redraw else photo.image_sha256
    try:
        picture = store.open(sha) if sha else None
    except (BlobError, OSError):
        picture = None  # a missing or corrupted picture is never drawn, but said
    if picture is None:
        return None
    if redraw:
        picture = annotate(picture, reviewed_analysis(photo, cells),
                           caption_of(detail.reference, photo.received_at))
    copy = picture.convert("RGB")
    copy.thumbnail((REPORT_SIDE, REPORT_SIDE))
    return copy
