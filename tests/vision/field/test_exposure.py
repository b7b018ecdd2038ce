"""A washed-out smear is read at a smear's usual stain strength; any other photo as it is."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vision.field.exposure import USUAL_STRENGTH, restored, stain_strength

BACKGROUND = np.array([225.0, 228.0, 230.0])
NUCLEUS_DENSITY = np.array([0.55, 0.75, 0.35])  # optical density: violet
RED_CELL_DENSITY = np.array([0.10, 0.35, 0.20])


def _smear(fade: float = 1.0) -> Image.Image:
    """A nucleus among red cells on a pale background, every density times ``fade``."""
    density = np.zeros((120, 120, 3))
    ys, xs = np.mgrid[:120, :120]
    for cx, cy in ((20, 20), (100, 25), (25, 100), (95, 95)):
        density[np.hypot(xs - cx, ys - cy) < 14] = RED_CELL_DENSITY
    density[np.hypot(xs - 60, ys - 60) < 18] = NUCLEUS_DENSITY
    pixels = BACKGROUND * np.exp(-density * fade)
    return Image.fromarray(pixels.round().astype(np.uint8))


def _strength(image: Image.Image) -> float:
    return stain_strength(np.asarray(image, dtype=np.float32))[0]


def test_a_normally_stained_smear_is_read_as_it_is() -> None:
    image = _smear()
    assert _strength(image) >= USUAL_STRENGTH
    assert restored(image)[0] is image


def test_a_washed_out_smear_gets_its_stain_back() -> None:
    image, first = restored(_smear(fade=0.4))
    assert abs(_strength(image) - USUAL_STRENGTH) < 0.05
    # The nucleus keeps its colour: its densities in the stain's proportions, scaled up.
    centre = np.asarray(image, dtype=np.float32)[60, 60]
    density = -np.log(centre / BACKGROUND)
    expected = NUCLEUS_DENSITY * USUAL_STRENGTH / NUCLEUS_DENSITY.sum()
    assert np.allclose(density, expected, atol=0.03)
    assert first[0].shape == (120, 120, 3)


def test_a_blank_slide_is_left_blank() -> None:
    blank = Image.fromarray(np.full((80, 80, 3), BACKGROUND, dtype=np.uint8))
    assert restored(blank)[0] is blank
