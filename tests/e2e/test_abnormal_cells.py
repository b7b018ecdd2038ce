"""Blasts through the chat, with every part real: the alert opens the album's answer, `/case`
and the PDF; an expert's correction to a blast is stored with the new label.

The workers serve the default deployment: the shipped model, screened by the abnormal-cells
model (``HV_SCREEN_MODEL_PATH``). The blasts are DeepAPL's (leukaemia patients of another
laboratory; never shipped, so the test reads them from ../shared/data and skips without it), from
its validation patients, whom neither model learnt from. About half of such blasts are named
blast (BENCHMARKS.md) and most of the rest flagged as possible blasts; this test is of what the
stack does with the answer, so it sends blasts that the screened model names blast.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image
from sqlalchemy import select

from core.db.models import CellResult, LabelReview
from core.enums import Role
from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH, DEFAULT_RED_CELL_MODEL_PATH
from devkit.harness import Stack, running_stack
from tests.conftest import fresh_postgres_database, pbc_fixtures
from tests.e2e.test_cases_and_retraining import correct_the_cell, say, send_cell
from vision.field.analyse import analyse
from vision.field.learned_red_cells import load_red_cell_finder
from vision.model.classifier import CellClassifier

pytestmark = pytest.mark.data
ALERT = "🚨 Blasts seen:"


def validation_blasts(shared: Path, count: int) -> list[Path]:
    """The first ``count`` DeepAPL validation blasts, in the manifest's order, that the path
    names blast."""
    with (shared / "deepapl" / "manifest.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "val" and r["label"] == "blast"]
    classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu",
                                              screen=ABNORMAL_MODEL_PATH)
    red_cells = load_red_cell_finder(DEFAULT_RED_CELL_MODEL_PATH)
    named = []
    for row in rows:
        path = shared / "deepapl" / row["path"]
        with Image.open(path) as image:
            cells = analyse(image, classifier, red_cells=red_cells).classified
        if any(cell.label == "blast" for cell in cells):
            named.append(path)
        if len(named) == count:
            return named
    raise AssertionError(f"the model names only {len(named)} validation blasts blast")


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("abnormal")
    with fresh_postgres_database() as url, running_stack(root, url, redis_url) as running:
        yield running


def test_an_album_holding_blasts_opens_with_the_alert_in_the_reply_the_case_and_the_pdf(
        stack: Stack, shared_data: Path, tmp_path: Path) -> None:
    tech = stack.new_user()
    say(stack, tech, "/case AML-1")
    blasts = validation_blasts(shared_data, 3)
    neutrophil = pbc_fixtures()["neutrophil"]
    stack.standin.send_album(tech, [("document", path.read_bytes(), path.name)
                                    for path in [*blasts, neutrophil]])
    stack.standin.wait_for(tech, 1, 120, lambda a: "Model:" in (a.text or ""))
    [answer] = stack.results(tech)
    text = answer.text or ""
    assert text.startswith(ALERT), text
    assert "of 4 white cells — urgent review by a haematologist" in text
    assert text.index(ALERT) < text.index("Differential over the album")
    assert "Blast:" in text  # the differential names them, with their percentage

    shown, _chart = say(stack, tech, "/case AML-1", replies=2)
    lines = (shown.text or "").splitlines()
    assert lines[1].startswith(ALERT), shown.text

    _csv, pdf_doc = say(stack, tech, "/export AML-1", replies=2)
    pdf = pypdfium2.PdfDocument(pdf_doc.file)
    first = pdf[0].get_textpage().get_text_range()
    assert "Blasts seen:" in first and "urgent review by a haematologist" in first
    pdf[0].render(scale=1).to_pil().save(tmp_path / "summary.png")


def test_an_experts_correction_to_a_blast_is_stored_and_raises_the_alert(
        stack: Stack) -> None:
    reviewer = stack.new_user(role=Role.REVIEWER)
    say(stack, reviewer, "/case AML-2")
    submission = send_cell(stack, reviewer, "lymphocyte")
    result = stack.result_for(reviewer)
    assert ALERT not in (result.text or "")
    # The new labels are offered beside the normal ones.
    stored = correct_the_cell(stack, reviewer, result, submission.id, "blast")
    assert "Lymphocyte → Blast" in (stored.text or "")

    with stack.sessions() as session:
        cell = session.scalars(select(CellResult).where(
            CellResult.submission_id == submission.id)).one()
        review = session.scalars(select(LabelReview).where(LabelReview.cell_id == cell.id)).one()
        assert (cell.label, cell.expert_label) == ("lymphocyte", "blast")
        assert (review.previous_label, review.label) == ("lymphocyte", "blast")
    shown, _chart = say(stack, reviewer, "/case AML-2", replies=2)
    assert f"{ALERT} 1 of 1 white cells" in (shown.text or "")
