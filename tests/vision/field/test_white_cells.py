"""White cells are found by their nuclei, in a field and in a crop that the cell fills."""

from __future__ import annotations

from PIL import Image, ImageDraw

from vision.field.detect import detect
from vision.field.scale import measure_scale

BACKGROUND = (226, 229, 231)
RED_CELL = (196, 146, 148)
CYTOPLASM = (200, 175, 200)  # a lymphocyte's pale lilac rim
NUCLEUS = (95, 40, 140)
# A stain whose red cells take up violet themselves (LISC's Gismo-Right): lavender red cells,
# a nucleus about 2.4 times as violet as they are, never the three times a nucleus usually is.
LAVENDER_RED_CELL = (170, 140, 195)
LAVENDER_NUCLEUS = (110, 70, 150)


def _filled_crop() -> Image.Image:
    """A tight 170 px crop around a 130 px white cell whose nucleus (100 px) is most of what is
    stained, as other laboratories cut their cells out, with two red cells cut by the corners."""
    image = Image.new("RGB", (170, 170), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.ellipse((-30, -30, 30, 30), fill=RED_CELL)
    draw.ellipse((140, 140, 200, 200), fill=RED_CELL)
    draw.ellipse((20, 20, 150, 150), fill=CYTOPLASM)
    draw.ellipse((35, 35, 135, 135), fill=NUCLEUS)
    return image


def _red_cells_only(red_cell: tuple[int, int, int] = RED_CELL) -> Image.Image:
    image = Image.new("RGB", (640, 480), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for y in range(40, 480, 80):
        for x in range(40, 640, 80):
            draw.ellipse((x - 30, y - 30, x + 30, y + 30), fill=red_cell)
    return image


def _lavender_field_with_a_white_cell() -> Image.Image:
    """Lavender red cells around one white cell (90 px, its nucleus 70 px) at (320, 240)."""
    image = _red_cells_only(LAVENDER_RED_CELL)
    draw = ImageDraw.Draw(image)
    draw.ellipse((270, 190, 370, 290), fill=BACKGROUND)
    draw.ellipse((275, 195, 365, 285), fill=CYTOPLASM)
    draw.ellipse((285, 205, 355, 275), fill=LAVENDER_NUCLEUS)
    return image


def _white_boxes(image: Image.Image, red_cell_px: float) -> list[tuple[float, ...]]:
    detections, _, factor = detect(image, red_cell_px)
    return [tuple(v / factor for v in d.box) for d in detections if d.kind == "wbc"]


def test_a_white_cell_filling_its_crop_is_found_although_its_nucleus_is_the_typical_stain(
) -> None:
    # Three times the median stained pixel's violet is more than the nucleus itself reaches;
    # the crop's pale quartile (cytoplasm, cut red cells) is the stain it stands out from.
    [box] = _white_boxes(_filled_crop(), red_cell_px=130 * 7.5 / 13.5)
    assert box[0] < 40 and box[1] < 40 and box[2] > 130 and box[3] > 130


def test_a_crop_filled_by_its_white_cell_is_measured_by_the_white_cell() -> None:
    scale = measure_scale(_filled_crop(), default_red_cell_px=1.0)
    assert scale.measured and scale.ruler == "white cells"


def test_red_cells_alone_are_never_taken_for_white_cells() -> None:
    # A field without a nucleus gets the second, lower level too: red cells must stay below it.
    assert _white_boxes(_red_cells_only(), red_cell_px=60) == []


def test_a_nucleus_less_violet_than_usual_is_found_where_the_red_cells_take_up_violet(
) -> None:
    [box] = _white_boxes(_lavender_field_with_a_white_cell(), red_cell_px=60)
    assert box[0] < 290 and box[1] < 210 and box[2] > 350 and box[3] > 270


def test_red_cells_that_take_up_violet_are_never_taken_for_white_cells() -> None:
    # Every look, the last and lowest included, stays above the red cells' own violet.
    assert _white_boxes(_red_cells_only(LAVENDER_RED_CELL), red_cell_px=60) == []
