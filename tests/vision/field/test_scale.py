"""The scale is read from the red cells in the image, not from its pixel count."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from tests.conftest import FIXTURES, pbc_fixtures, shifted_into_black
from vision.field.scale import (
    BISECTION_STEPS,
    cell_masks,
    half_width,
    image_scale,
    measure_scale,
)

BACKGROUND = (226, 229, 231)


def _discs(diameter: int, size: tuple[int, int] = (800, 600),
           specks: bool = False) -> Image.Image:
    """Pink red cells of ``diameter`` px on a pale background, a little apart; with ``specks``,
    each with a dark violet dot 3 px wide off its centre."""
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = round(diameter * 1.3)
    for y in range(step // 2, size[1] - diameter // 2, step):
        for x in range(step // 2, size[0] - diameter // 2, step):
            draw.ellipse((x - diameter // 2, y - diameter // 2, x + diameter // 2,
                          y + diameter // 2), fill=(196, 146, 148))
            if specks:
                draw.ellipse((x + 8, y - 10, x + 11, y - 7), fill=(95, 40, 140))
    return image


@pytest.mark.parametrize("diameter", [30, 60, 120])
def test_drawn_red_cells_measure_their_diameter(diameter: int) -> None:
    scale = measure_scale(_discs(diameter), default_red_cell_px=1.0)
    assert scale.measured
    assert scale.red_cell_px == pytest.approx(diameter, rel=0.2)
    assert scale.px_per_um == pytest.approx(scale.red_cell_px / 7.5)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_resizing_a_real_field_resizes_its_measured_red_cells(factor: float) -> None:
    field = Image.open(FIXTURES / "bccd" / "BloodImage_00015.jpg").convert("RGB")
    resized = field.resize((round(field.width * factor), round(field.height * factor)),
                           Image.Resampling.BICUBIC)
    assert image_scale(resized).red_cell_px == pytest.approx(
        image_scale(field).red_cell_px * factor, rel=0.05)


def test_a_close_ups_white_cell_is_not_taken_for_a_red_cell() -> None:
    # PBC's 256 px crops hold red cells about 56 px across around a much larger white cell.
    for path in pbc_fixtures().values():
        assert 40 < image_scale(Image.open(path).convert("RGB")).red_cell_px < 75, path


def test_a_blank_slide_has_nothing_to_measure() -> None:
    scale = measure_scale(Image.new("RGB", (640, 480), BACKGROUND), default_red_cell_px=51.0)
    assert not scale.measured and scale.red_cell_px == 51.0


def test_a_tight_crop_of_one_white_cell_is_measured_by_the_white_cell() -> None:
    # A white cell 130 px across (pink cytoplasm, violet nucleus) and no red cell around it: at a
    # white cell's typical 13.5 µm, the red cells of this image would be 130 * 7.5 / 13.5 px.
    image = Image.new("RGB", (180, 180), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.ellipse((25, 25, 155, 155), fill=(205, 170, 190))
    draw.ellipse((55, 50, 125, 130), fill=(95, 40, 140))
    scale = measure_scale(image, default_red_cell_px=1.0)
    assert scale.measured and scale.ruler == "white cells"
    assert scale.red_cell_px == pytest.approx(130 * 7.5 / 13.5, rel=0.2)


def test_red_cell_slivers_around_a_tight_crop_are_no_ruler() -> None:
    # PBC's neutrophil cut out tightly (the central 140 of 256 px): the only red cells left are
    # the slivers the crop cuts, which read a third of their size; the white cell is the ruler.
    path = pbc_fixtures()["neutrophil"]
    tight = Image.open(path).convert("RGB").crop((58, 58, 198, 198))
    scale = image_scale(tight)
    assert scale.ruler == "white cells"
    assert 40 < scale.red_cell_px < 75


def test_dark_specks_on_red_cells_do_not_make_them_nucleated() -> None:
    # BCCD's crenated red cells carry dark violet dots a pixel or two wide: taken for nuclei,
    # they made a field's red cells "nucleated" and the scale was read off the white-cell ruler.
    scale = measure_scale(_discs(60, specks=True), default_red_cell_px=1.0)
    assert scale.ruler == "red cells"
    assert scale.red_cell_px == pytest.approx(60, rel=0.2)


def test_red_cells_stay_the_ruler_where_there_are_enough_of_them() -> None:
    assert measure_scale(_discs(60), default_red_cell_px=1.0).ruler == "red cells"


@pytest.mark.parametrize("shift", [(60, 0), (-50, 40)])
def test_black_bands_of_a_shifted_crop_are_no_ruler(shift: tuple[int, int]) -> None:
    # PBC's red cells measure 56 px in these crops; a band takes up to a quarter of the image
    # and cuts the cells along it, so the reading is looser than the crop's own.
    for path in pbc_fixtures().values():
        shifted = shifted_into_black(Image.open(path).convert("RGB"), *shift)
        assert 33 < image_scale(shifted).red_cell_px < 80, path


def _half_width_over_the_whole_image(mask: np.ndarray) -> float | None:
    """``half_width`` as first written: every distance taken over the whole image."""
    total = int(mask.sum())
    if total < 20:
        return None
    depth = ndi.distance_transform_edt(mask)
    low, high = 0.5, float(depth.max())
    if high <= low:
        return None
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        core = depth > middle
        kept = ndi.distance_transform_edt(~core) <= middle if core.any() else core
        if float((kept & mask).sum()) / total >= 0.5:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@pytest.mark.parametrize("name", ["neutrophil", "lymphocyte", "platelet"])
def test_the_half_width_read_in_the_masks_window_is_the_whole_images_to_the_bit(
        name: str) -> None:
    # Read in the window of the mask (and of the opening's core) for speed: a close-up's white
    # cell fills a fraction of the image. Beyond the window lies only background.
    cells = cell_masks(np.asarray(Image.open(pbc_fixtures()[name]).convert("RGB"),
                                  dtype=np.float32))
    for mask in (cells.red, cells.nucleated, cells.white, cells.red[:40]):
        assert half_width(mask) == _half_width_over_the_whole_image(mask)
