"""The field benchmark shows a reader the detections BCCD has no box for."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from benchmarks.field_benchmark import unmatched_white_cells
from benchmarks.phone_conditions import phone_visible
from core.field.bccd import Annotated, read_boxes
from tests.conftest import FIXTURES

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
