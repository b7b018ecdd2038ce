"""The dark surround of a photo (an eyepiece's, a shifted crop's black bands) is not the smear."""

from __future__ import annotations

import numpy as np

from vision.field.surround import SURROUND_MARGIN, field_of_view

FIELD, NUCLEUS, BLACK = (226, 229, 231), (90, 40, 140), (8, 8, 10)


def _image(size: int = 100) -> np.ndarray:
    return np.full((size, size, 3), FIELD, dtype=np.float32)


def _in_view(rgb: np.ndarray) -> np.ndarray:
    return field_of_view(rgb.mean(axis=2))


def test_an_evenly_lit_field_is_all_in_view() -> None:
    assert _in_view(_image()).all()


def test_a_black_band_at_the_edge_and_its_rim_are_out_of_view() -> None:
    rgb = _image()
    rgb[:, :30] = BLACK
    inside = _in_view(rgb)
    assert not inside[:, :30 + SURROUND_MARGIN].any()
    assert inside[:, 30 + SURROUND_MARGIN:].all()


def test_a_dark_nucleus_inside_the_field_stays_in_view() -> None:
    rgb = _image()
    rgb[40:60, 40:60] = BLACK  # darker than any nucleus, but it does not reach the edge
    assert _in_view(rgb).all()


def test_a_black_frame_has_no_field_of_view() -> None:
    assert not _in_view(np.full((50, 50, 3), BLACK, dtype=np.float32)).any()


def test_a_dark_red_cell_cut_by_the_edge_of_a_heavily_stained_field_stays_in_view() -> None:
    rgb = _image()
    rgb[30:60, :15] = (95, 45, 50)  # under half the field's brightness, far from black
    assert _in_view(rgb).all()


def test_a_nucleus_cut_by_the_eyepieces_rim_keeps_all_but_the_rim() -> None:
    rgb = _image()
    rgb[:, :20] = BLACK
    rgb[40:60, 20:45] = NUCLEUS  # dark, and touching the black
    inside = _in_view(rgb)
    assert inside[40:60, 35:45].all()
