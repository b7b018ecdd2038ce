"""A case exports as a CSV of every cell and a PDF whose pages render."""

from __future__ import annotations

import csv
import io

import pypdfium2
import pytest
from PIL import Image

from core.access import AccessDenied
from core.cases import open_case
from core.export import CSV_COLUMNS, export_case
from core.storage import FolderBlobs, ImageStore
from tests.core.conftest import Lab


def test_the_csv_lists_every_cell_and_the_pdf_has_a_summary_and_a_page_per_photo(
    lab: Lab, tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    store = ImageStore(FolderBlobs(tmp_path))
    stored = store.put(Image.new("RGB", (64, 48), (200, 120, 160)))
    tech = lab.member(30)
    detail, _ = open_case(lab.sessions, tech, "E/2026-1")
    tech = lab.member(30)
    for labels in (["neutrophil", "eosinophil"], ["lymphocyte"]):
        submission = lab.photo(tech, labels, mode="field")
        with lab.sessions.begin() as session:
            from core.db.models import Submission

            session.get(Submission, submission).sha256 = stored.sha256  # type: ignore[union-attr]

    exported = export_case(lab.sessions, tech, store, detail.case_id)
    assert exported.stem == "case-E_2026-1"  # never a path from the user's text
    rows = list(csv.DictReader(io.StringIO(exported.csv_bytes.decode())))
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["photo"], r["kind"], r["label"]) for r in rows] == [
        ("1", "wbc", "neutrophil"), ("1", "wbc", "eosinophil"), ("1", "rbc", ""),
        ("2", "wbc", "lymphocyte"), ("2", "rbc", "")]

    pdf = pypdfium2.PdfDocument(exported.pdf_bytes)
    assert len(pdf) == 3
    text = pdf[0].get_textpage().get_text_range()
    assert "E/2026-1" in text and "Decision support only" in text and "Neutrophil" in text


def test_another_laboratory_cannot_export_the_case(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    detail, _ = open_case(lab.sessions, lab.member(31, group="a"), "X-1")
    with pytest.raises(AccessDenied):
        export_case(lab.sessions, lab.member(32, group="b"), ImageStore(FolderBlobs(tmp_path)),
                    detail.case_id)


def test_a_photo_whose_picture_is_gone_keeps_its_page_and_says_so(
    lab: Lab, tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    stored = store.put(Image.new("RGB", (64, 48), (200, 120, 160)))
    tech = lab.member(33)
    detail, _ = open_case(lab.sessions, tech, "GONE-1")
    submission = lab.photo(tech, ["monocyte"], mode="field")
    with lab.sessions.begin() as session:
        from core.db.models import Submission

        session.get(Submission, submission).sha256 = stored.sha256  # type: ignore[union-attr]
    blobs.delete(stored.sha256)  # purged after the retention period

    exported = export_case(lab.sessions, tech, store, detail.case_id)
    pdf = pypdfium2.PdfDocument(exported.pdf_bytes)
    assert len(pdf) == 2
    text = " ".join(pdf[1].get_textpage().get_text_range().split())
    assert "Picture not available" in text and "Monocyte 1" in text
