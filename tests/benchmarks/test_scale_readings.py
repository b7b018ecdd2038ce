"""The scale benchmark holds each reading against the field's own red-cell boxes."""

from __future__ import annotations

from PIL import Image

from benchmarks.cross_lab import FRAMINGS, crop_around
from benchmarks.scale_readings import WHOLE_FIELD, box_red_cell_px, read_set
from lab.bccd import Annotated, read_boxes
from tests.conftest import FIXTURES

FIELDS = [Annotated(path, read_boxes(path.with_suffix(".xml")))
          for path in sorted((FIXTURES / "bccd").glob("*.jpg"))]


def test_every_field_and_every_framing_of_its_white_cells_is_read() -> None:
    readings = read_set(FIELDS)
    assert set(readings) == {WHOLE_FIELD, *FRAMINGS}
    assert len(readings[WHOLE_FIELD].ratios) == len(FIELDS)
    white_cells = sum(len(f.boxes["wbc"]) for f in FIELDS)
    assert all(len(readings[name].ratios) == white_cells for name in FRAMINGS)
    # Both fixtures' whole fields are read within a third of their boxes' red-cell size.
    assert all(0.67 < ratio < 1.33 for ratio in readings[WHOLE_FIELD].ratios)
    row = readings[WHOLE_FIELD].row()
    assert row["readings"] == 2 and 0.0 <= row["off_20"] <= 1.0


def test_the_truth_is_the_median_red_cell_box_side() -> None:
    # BloodImage_00015's 14 red-cell boxes: their sides' median is 103 px.
    field = next(f for f in FIELDS if f.image.stem == "BloodImage_00015")
    assert box_red_cell_px(field) == 103.0
    assert box_red_cell_px(Annotated(field.image, {**field.boxes, "rbc": []})) is None


def test_a_crop_is_kept_inside_the_field_and_its_box_moves_with_it() -> None:
    image = Image.new("RGB", (640, 480))
    crop, inside = crop_around(image, (0, 10, 40, 50), 200)
    assert crop.size == (200, 200) and inside == (0, 10, 40, 50)
    crop, inside = crop_around(image, (300, 200, 340, 240), 100)
    assert crop.size == (100, 100) and inside == (30, 30, 70, 70)
    crop, _ = crop_around(image, (300, 200, 340, 240), 900)
    assert crop.size == (480, 480)
