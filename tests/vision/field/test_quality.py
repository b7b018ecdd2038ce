"""The quality gate judges the smear, not the lamp: a white background is no over-exposure
unless the stain has washed out with it; and focus by fine detail against coarse, whatever the
photo's resolution or how much of it one cell fills."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from lab.bccd import read_boxes
from tests.conftest import FIXTURES
from vision.field.detect import WORK_RED_CELL_PX, DetectorParams, working_masks
from vision.field.quality import Quality, QualityThresholds, measure
from vision.field.scale import image_scale

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


def test_focus_judged_at_the_photos_own_resolution_is_the_photos() -> None:
    # A working image enlarged by a hair: resampled back to the photo's pixels to be judged,
    # it must not gain an edge of black rows that reads as sharp detail.
    blurred = Image.open(FIELD).convert("RGB").filter(ImageFilter.GaussianBlur(4))
    masks, factor = working_masks(blurred, WORK_RED_CELL_PX / 1.016, DetectorParams())
    assert factor > 1
    judged = measure(masks, upsampled=factor)
    assert judged.focus == pytest.approx(measure(masks).focus, rel=0.2)
    assert judged.problem == "blurred"


def test_a_tight_crop_of_one_white_cell_is_sharp_and_blurred_it_is_not() -> None:
    # Fine detail is judged against coarse, so one large cell filling the crop is no sign of
    # blur; the same crop blurred by 3 px at the working scale is.
    field = Image.open(FIELD).convert("RGB")
    [box] = read_boxes(FIELD.with_suffix(".xml"))["wbc"]
    crop = field.crop(box)
    assert _quality(crop).focus >= QualityThresholds().min_focus
    sigma = 3 * image_scale(crop).red_cell_px / WORK_RED_CELL_PX
    assert _quality(crop.filter(ImageFilter.GaussianBlur(sigma))).problem == "blurred"


def test_a_smear_under_a_warm_lamp_is_still_a_smear() -> None:
    # The brown test must not take a yellow cast for brown stain: density is read against the
    # field's own background, so the cast falls away with it.
    rgb = np.asarray(Image.open(FIELD).convert("RGB"), dtype=np.float32)
    warm = Image.fromarray((rgb * np.array([1.10, 1.0, 0.80])).clip(0, 255).astype(np.uint8))
    quality = _quality(warm)
    assert quality.passed, quality
    assert quality.brown < QualityThresholds().max_brown / 2
