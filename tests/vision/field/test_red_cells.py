"""Red cells are counted one by one, also where they touch and overlap."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from vision.field.detect import detect

BACKGROUND = (226, 229, 231)
CYTOPLASM = (196, 146, 148)
PALE_CENTRE = (214, 178, 178)  # biconcave: thinner, paler middle


def _smear(centres: list[tuple[int, int]], radius: int = 52) -> Image.Image:
    """A 640 x 480 field of red cells drawn as discs with pale centres, as BCCD shows them."""
    image = Image.new("RGB", (640, 480), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for x, y in centres:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=CYTOPLASM)
    for x, y in centres:
        draw.ellipse((x - 18, y - 18, x + 18, y + 18), fill=PALE_CENTRE)
    return image


def _red_centres(image: Image.Image) -> list[tuple[float, float]]:
    """Centres in the image's own pixels; its red cells are 104 px across."""
    detections, _, factor = detect(image, red_cell_px=104)
    return [(x / factor, y / factor) for x, y in (d.centre for d in detections if d.kind == "rbc")]


def test_an_isolated_red_cell_is_one_cell_at_its_place() -> None:
    [(x, y)] = _red_centres(_smear([(320, 240)]))
    assert abs(x - 320) <= 4 and abs(y - 240) <= 4


def test_overlapping_red_cells_are_counted_separately() -> None:
    # A row of three, each overlapping the next by a fifth of its width, and one apart.
    truth = [(130, 300), (214, 300), (298, 300), (520, 120)]
    found = _red_centres(_smear(truth))
    assert len(found) == len(truth)
    for x, y in truth:
        assert min(np.hypot(x - fx, y - fy) for fx, fy in found) <= 12


def test_a_field_without_red_cells_counts_none() -> None:
    assert _red_centres(Image.new("RGB", (640, 480), BACKGROUND)) == []
