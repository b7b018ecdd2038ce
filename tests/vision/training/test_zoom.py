"""A cell's image framed tighter or wider, as a misread scale frames it on the analysis path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from vision.training.zoom import padding_colour, zoom_factors, zoomed

BACKGROUND = (240, 225, 220)
CELL = (90, 40, 140)


def _cell(side: int = 100) -> Image.Image:
    """A violet square cell in the middle of a pale background."""
    image = Image.new("RGB", (side, side), BACKGROUND)
    image.paste(CELL, (side // 2 - 10, side // 2 - 10, side // 2 + 10, side // 2 + 10))
    return image


def test_the_padding_is_the_colour_of_the_brightest_common_pixels() -> None:
    assert padding_colour(_cell()) == BACKGROUND


def test_zooming_in_keeps_the_centre_so_the_cell_fills_more_of_the_frame() -> None:
    closer = zoomed(_cell(), 2.0)
    assert closer.size == (50, 50)
    pixels = np.asarray(closer)
    assert (pixels == CELL).all(axis=2).mean() == pytest.approx(400 / 2500)
    assert tuple(pixels[25, 25]) == CELL


def test_zooming_out_pads_with_the_background_not_black() -> None:
    farther = zoomed(_cell(), 0.5)
    assert farther.size == (200, 200)
    pixels = np.asarray(farther)
    assert tuple(pixels[100, 100]) == CELL and tuple(pixels[0, 0]) == BACKGROUND
    assert (pixels == CELL).all(axis=2).sum() == 400


def test_zoom_factors_spread_both_ways_within_the_range_and_repeat_for_a_seed() -> None:
    factors = zoom_factors(400, 1 / 0.7, seed=3)
    assert all(0.7 - 1e-9 <= f <= 1 / 0.7 + 1e-9 for f in factors)
    assert min(factors) < 0.75 and max(factors) > 1.35
    # Log-uniform: as many cells are shown smaller as larger.
    assert abs(np.mean([math.log(f) for f in factors])) < 0.05
    assert zoom_factors(400, 1 / 0.7, seed=3) == factors != zoom_factors(400, 1 / 0.7, seed=4)
