"""The fast morphology in detection gives exactly scipy's answers."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from vision.field.detect import dilate_by_disk, fill_holes


def _blobs(seed: int) -> np.ndarray:
    # Random rings and specks: holes, holes touching the edge, nested holes.
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random((120, 160)), 3)
    return (smooth > np.quantile(smooth, 0.5)) ^ (smooth > np.quantile(smooth, 0.8))


@pytest.mark.parametrize("seed", range(6))
def test_fill_holes_matches_scipy(seed: int) -> None:
    mask = _blobs(seed)
    assert np.array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))


@pytest.mark.parametrize(("seed", "radius"), [(0, 1), (1, 4), (2, 9), (3, 13)])
def test_dilation_by_a_disk_matches_scipy(seed: int, radius: int) -> None:
    mask = _blobs(seed) & (np.random.default_rng(seed).random((120, 160)) > 0.97)
    assert np.array_equal(dilate_by_disk(mask, radius),
                          ndi.binary_dilation(mask, structure=disk(radius)))


@pytest.mark.parametrize("value", [False, True])
def test_empty_and_full_masks(value: bool) -> None:
    mask = np.full((20, 30), value)
    assert np.array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))
    assert np.array_equal(dilate_by_disk(mask, 9), ndi.binary_dilation(mask, structure=disk(9)))
