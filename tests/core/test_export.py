"""A case exports as a CSV of every cell and the report a laboratory files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from PIL import Image

from core.access import AccessDenied
from core.cases import case_detail, open_case, set_laboratory_name, set_wbc
from core.db.models import Submission
from core.enums import Role, SubmissionStatus
from core.export import CSV_COLUMNS, export_case
from core.report import differential_rows
from core.report_pictures import report_pictures
from core.reviews import correct, reviewable_cells
from core.storage import FolderBlobs, ImageStore
from tests.core.conftest import Lab
from vision.field.annotate import COLOURS
from vision.field.quality import MESSAGES


def _with_image(lab: Lab, submission: int, sha256: str) -> None:
    with lab.sessions.begin() as session:
        row = session.get(Submission, submission)
        assert row is not None
        row.sha256 = sha256


def _rejected(lab: Lab, submission: int, problem: str) -> None:
    with lab.sessions.begin() as session:
        row = session.get(Submission, submission)
        assert row is not None
        row.status, row.error = SubmissionStatus.REJECTED, MESSAGES[problem]
        for cell in list(row.cells):
            session.delete(cell)


def _text(pdf: pypdfium2.PdfDocument, page: int) -> str:
    return " ".join(pdf[page].get_textpage().get_text_range().split())


def test_the_csv_lists_every_cell_with_its_reviewer_by_name(lab: Lab, tmp_path: Path) -> None:
    store = ImageStore(FolderBlobs(tmp_path))
    reviewer = lab.member(30, Role.REVIEWER)
    detail, _ = open_case(lab.sessions, reviewer, "E/2026-1")
    reviewer = lab.member(30, Role.REVIEWER)
    first = lab.photo(reviewer, ["neutrophil", "eosinophil"], mode="field")
    lab.photo(reviewer, ["lymphocyte"], mode="field")
    correct(lab.sessions, reviewer, reviewable_cells(lab.sessions, reviewer, first)[0].cell_id,
            "ig")

    exported = export_case(lab.sessions, reviewer, store, detail.case_id)
    assert exported.stem == "case-E_2026-1"  # never a path from the user's text
    rows = list(csv.DictReader(io.StringIO(exported.csv_bytes.decode())))
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["photo"], r["kind"], r["label"], r["expert_label"], r["reviewed_by"])
            for r in rows] == [
        ("1", "wbc", "neutrophil", "ig", "@u30"), ("1", "wbc", "eosinophil", "", ""),
        ("1", "rbc", "", "", ""), ("2", "wbc", "lymphocyte", "", ""), ("2", "rbc", "", "", "")]


def test_a_fifteen_photo_case_reports_as_a_laboratory_would_file_it(
    lab: Lab, tmp_path: Path,
) -> None:
    store = ImageStore(FolderBlobs(tmp_path))
    stored = store.put(Image.new("RGB", (320, 240), (225, 200, 205)))
    admin = lab.member(40, Role.ADMIN, group="haem")
    set_laboratory_name(lab.sessions, admin, "St Elsewhere Haematology")
    reviewer = lab.member(41, Role.REVIEWER, group="haem")
    detail, _ = open_case(lab.sessions, reviewer, "H24-0193")
    reviewer = lab.member(41, Role.REVIEWER)  # re-read: the case is now the member's
    set_wbc(lab.sessions, reviewer, "12,5")
    photos = [lab.photo(reviewer, ["neutrophil", "neutrophil", "lymphocyte"], mode="field",
                        reasons=("unusual",) if n == 2 else ())
              for n in range(15)]
    for submission in photos:
        _with_image(lab, submission, stored.sha256)
    _rejected(lab, photos[13], "not_a_smear")
    _rejected(lab, photos[14], "blurred")
    corrected = reviewable_cells(lab.sessions, reviewer, photos[0])[0]
    correct(lab.sessions, reviewer, corrected.cell_id, "monocyte")

    exported = export_case(lab.sessions, reviewer, store, detail.case_id)
    pdf = pypdfium2.PdfDocument(exported.pdf_bytes)
    assert len(pdf) == 4  # the summary, and 13 analysed photos six to a page
    for index in range(len(pdf)):
        png = tmp_path / f"page-{index + 1}.png"  # as a reader sees it
        pdf[index].render(scale=1).to_pil().save(png)
        assert Image.open(png).convert("L").getextrema()[0] < 100  # something is printed
    summary = _text(pdf, 0)
    assert "St Elsewhere Haematology" in summary
    assert "Case H24-0193" in summary
    # 25 neutrophils, 13 lymphocytes, 1 monocyte: 64.1%, 33.3%, 2.6% of 12.5 x10^9/L.
    assert "Neutrophil 25 64.1 40-80 8.01 2-7 H" in summary
    assert "Lymphocyte 13 33.3 20-40 4.17 1-3 H" in summary
    assert "Total white-cell count (analyser): 12.5 x10^9/L" in summary
    assert "Dacie and Lewis Practical Haematology" in summary
    assert "Cells awaiting review: 3 (3 unusual)" in summary
    assert ("Photo 14: This doesn't look like a stained blood smear." in summary
            and "Photo 15: The photo is out of focus: tap the cells" in summary)
    assert "Photo 1 cell 1: Neutrophil -> Monocyte (@u41" in summary
    assert "Reviewed by: @u41" in summary
    assert "Reviewed and authorised by: ____" in summary
    assert "Platelets: not estimated" in summary
    assert "Photo 13 · " in _text(pdf, 3) and "Photo 14 · " not in _text(pdf, 3)

    # The corrected cell is drawn with the expert's label, in its class's colour.
    now = case_detail(lab.sessions, reviewer, detail.case_id)
    assert now is not None
    pictures = report_pictures(lab.sessions, store, now)
    assert sorted(pictures) == list(range(1, 14))
    first = np.asarray(pictures[1])
    assert (first == COLOURS["monocyte"]).all(axis=2).any()
    assert not (np.asarray(pictures[2]) == COLOURS["monocyte"]).all(axis=2).any()


def test_without_a_white_cell_count_the_report_gives_shares_and_ranges_only() -> None:
    from datetime import datetime

    from core.cases import CaseDetail, Photo

    photo = Photo(1, 1, datetime(2026, 12, 7), SubmissionStatus.DONE, "field",
                  {"neutrophil": 7, "blast": 1, "monocyte": 2}, 10, 0, 0, 0, "v1", None, None,
                  None, None, None)
    detail = CaseDetail(1, "C-1", "lab", "@t", datetime(2026, 12, 7), False, [photo])
    assert differential_rows(detail) == [
        ["Blast", "1", "10.0", "none", "H"], ["Neutrophil", "7", "70.0", "40-80", ""],
        ["Monocyte", "2", "20.0", "2-10", "H"]]


def test_another_laboratory_cannot_export_the_case(lab: Lab, tmp_path: Path) -> None:
    detail, _ = open_case(lab.sessions, lab.member(31, group="a"), "X-1")
    with pytest.raises(AccessDenied):
        export_case(lab.sessions, lab.member(32, group="b"), ImageStore(FolderBlobs(tmp_path)),
                    detail.case_id)


def test_a_photo_whose_picture_is_gone_keeps_its_place_and_says_so(
    lab: Lab, tmp_path: Path,
) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    stored = store.put(Image.new("RGB", (64, 48), (200, 120, 160)))
    tech = lab.member(33)
    detail, _ = open_case(lab.sessions, tech, "GONE-1")
    submission = lab.photo(tech, ["monocyte"], mode="field")
    _with_image(lab, submission, stored.sha256)
    blobs.delete(stored.sha256)  # purged after the retention period

    exported = export_case(lab.sessions, tech, store, detail.case_id)
    pdf = pypdfium2.PdfDocument(exported.pdf_bytes)
    assert len(pdf) == 2
    text = _text(pdf, 1)
    assert "Picture not available" in text and "Monocyte 1" in text
