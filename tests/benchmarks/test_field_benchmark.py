"""The field benchmark shows a reader the detections BCCD has no box for."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from benchmarks.field_benchmark import red_cells_against_gaps, unmatched_white_cells
from benchmarks.phone_conditions import phone_visible
from core.settings import DEFAULT_RED_CELL_MODEL_PATH
from lab.bccd import Annotated, read_boxes
from tests.conftest import FIXTURES
from vision.field.learned_red_cells import LearnedRedCells

FIELD = FIXTURES / "bccd" / "BloodImage_00007"


def _field(without_white_cells: bool) -> Annotated:
    boxes = read_boxes(FIELD.with_suffix(".xml"))
    if without_white_cells:
        boxes = {**boxes, "wbc": []}
    return Annotated(FIELD.with_suffix(".jpg"), boxes)


def test_a_white_cell_without_a_box_is_drawn_for_review(tmp_path: Path) -> None:
    out = tmp_path / "unmatched.png"
    assert unmatched_white_cells([_field(without_white_cells=True)], out) == 1
    with Image.open(out) as sheet:
        assert sheet.size[0] > 0 and sheet.size[1] > 0


def test_nothing_is_drawn_when_every_white_cell_has_its_box(tmp_path: Path) -> None:
    out = tmp_path / "unmatched.png"
    assert unmatched_white_cells([_field(without_white_cells=False)], out) == 0
    assert not out.exists()


def test_all_conditions_scored_on_the_visible_part_keep_boxes_inside_the_eyepiece() -> None:
    field = _field(without_white_cells=False)
    image, boxes = phone_visible(Image.open(field.image).convert("RGB"), field.boxes)
    width, height = image.size
    radius = 0.475 * min(width, height)
    for x0, y0, x1, y1 in (box for kind in boxes.values() for box in kind):
        # Every corner of a visible-part box lies within the circle's bounding square.
        assert width / 2 - radius - 1 <= x0 <= x1 <= width / 2 + radius + 1
        assert height / 2 - radius - 1 <= y0 <= y1 <= height / 2 + radius + 1


def test_red_cells_are_scored_against_the_boxes_and_drawn_for_a_reader(tmp_path: Path) -> None:
    finder = LearnedRedCells.load(DEFAULT_RED_CELL_MODEL_PATH)
    out = tmp_path / "red.png"
    scores = red_cells_against_gaps([_field(without_white_cells=False)], finder, out)
    assert 0.5 <= scores["recall"] <= 1 and 0.5 <= scores["precision_known"] <= 1
    assert 0 <= scores["unknown_share"] < 1
    assert scores["in_boxes_abs"] == abs(scores["in_boxes_signed"])  # one field
    with Image.open(out) as sheet:
        assert sheet.size == (640, 480)
