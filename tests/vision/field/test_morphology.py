"""The fast morphology gives exactly scipy's answers."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from vision.field.morphology import closed, dilate_by_disk, dilated, eroded, fill_holes, opened


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


@pytest.mark.parametrize("seed", range(6))
def test_the_cross_operations_match_scipy(seed: int) -> None:
    mask = _blobs(seed) | (np.random.default_rng(seed).random((120, 160)) > 0.9)  # specks too
    mask[0, :40] = mask[:30, -1] = True  # shapes at the image's edge
    cross = ndi.generate_binary_structure(2, 1)
    assert np.array_equal(opened(mask), ndi.binary_opening(mask))
    assert np.array_equal(opened(mask), ndi.binary_opening(mask, structure=disk(1)))
    assert np.array_equal(closed(mask), ndi.binary_closing(mask, structure=disk(1)))
    assert np.array_equal(closed(mask, 2), ndi.binary_closing(mask, structure=disk(2)))
    for times in (1, 3):
        assert np.array_equal(dilated(mask, times), ndi.binary_dilation(mask, cross, times))
        assert np.array_equal(eroded(mask, times), ndi.binary_erosion(mask, cross, times))


def test_the_cross_operations_keep_tiny_images_as_scipy_does() -> None:
    for mask in (np.ones((1, 5), bool), np.ones((2, 2), bool), np.zeros((3, 1), bool)):
        assert np.array_equal(opened(mask), ndi.binary_opening(mask))
        assert np.array_equal(closed(mask, 2), ndi.binary_closing(mask, structure=disk(2)))
        assert np.array_equal(dilated(mask, 2), ndi.binary_dilation(mask, iterations=2))
