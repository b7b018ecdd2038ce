"""The quality gate judges the smear, not the lamp: a white background is no over-exposure
unless the stain has washed out with it."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.field.detect import DetectorParams, working_masks
from core.field.quality import Quality, measure
from core.field.scale import image_scale
from tests.conftest import FIXTURES

FIELD = FIXTURES / "bccd" / "BloodImage_00015.jpg"


def _quality(image: Image.Image) -> Quality:
    masks, factor = working_masks(image, image_scale(image).red_cell_px, DetectorParams())
    return measure(masks, upsampled=factor)


def _whitened_background(image: Image.Image) -> Image.Image:
    """The field with its pale background pushed to pure white, cells untouched."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    pale = rgb.mean(axis=2) > np.percentile(rgb.mean(axis=2), 55)
    rgb[pale] = 255
    return Image.fromarray(rgb.astype(np.uint8))


def test_a_clipped_white_background_with_stained_cells_passes() -> None:
    quality = _quality(_whitened_background(Image.open(FIELD)))
    assert quality.clipped > 0.25  # as clipped as an over-exposed photo
    assert quality.problem != "overexposed", quality


def test_a_photo_whose_stain_washed_out_is_over_exposed() -> None:
    rgb = np.asarray(Image.open(FIELD).convert("RGB"), dtype=np.float32) * 1.8
    quality = _quality(Image.fromarray(rgb.clip(0, 255).astype(np.uint8)))
    assert quality.problem == "overexposed", quality
