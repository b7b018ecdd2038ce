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


def _eyepiece(size: int = 200, blur: float = 6.0, radius: float = 0.4,
              falloff: float = 0.0) -> np.ndarray:
    """A field seen through an eyepiece (a circle ``radius`` of the side) whose rim fades to
    black over ``blur`` pixels' Gaussian, as a defocused eyepiece does; its light falls off by
    ``falloff`` from the centre to the circle's edge."""
    from scipy import ndimage as ndi

    ys, xs = np.mgrid[:size, :size]
    from_centre = np.hypot(xs - size / 2, ys - size / 2) / (radius * size)
    disc = (from_centre <= 1).astype(np.float32)
    light = (ndi.gaussian_filter(disc, blur) * (1 - falloff * from_centre.clip(0, 1) ** 2))
    light = light[..., None]
    return np.asarray(FIELD, dtype=np.float32) * light + np.asarray(BLACK) * (1 - light)


def test_a_blurred_eyepiece_rim_is_out_of_view_all_the_way_to_the_field() -> None:
    rgb = _eyepiece()
    inside = _in_view(rgb)
    grey = rgb.mean(axis=2)
    # Nothing in view is the rim's grey (the field is 228): a ring of it would read as stain
    # around the whole field.
    assert grey[inside].min() > 0.9 * 228
    assert inside[100, 100] and inside[100, 100 - 60]


def test_a_field_darker_at_its_edge_than_at_its_centre_keeps_its_edge() -> None:
    # A sharp eyepiece, the lamp falling off by 15% towards it: the rim ends where the light
    # stops rising, not where it reaches the centre's (Bio-Net fields through an eyepiece lost
    # 6-7% of their side that way).
    rgb = _eyepiece(size=300, blur=1.5, radius=0.45, falloff=0.15)
    inside = _in_view(rgb)
    assert inside[150, 150 - 135 + 8] and inside[150 + 135 - 8, 150]


def test_a_field_crowded_with_cells_up_to_black_bands_keeps_its_cells() -> None:
    rgb = _image()
    rgb[:, :20] = BLACK
    rgb[:, 20:] = (150, 110, 120)  # red cells cover the field from the band on
    rgb[::10, 20:] = FIELD  # with thin gaps of background between them
    rgb[1::10, 20:] = FIELD
    rgb[2::10, 20:] = FIELD
    inside = _in_view(rgb)
    assert inside[:, 20 + SURROUND_MARGIN + 1:].all()


def test_where_the_eyepiece_meets_the_image_edge_its_rim_is_out_of_view_too() -> None:
    rgb = _eyepiece(blur=8.0, radius=0.49)  # all but touching the edges: no black between
    inside = _in_view(rgb)
    # The rim's dark slivers at the edge (a fifth of the field's brightness) are gone; the
    # palest of the rim, three quarters as bright, may stay where the circle all but touches.
    assert rgb.mean(axis=2)[inside].min() > 0.6 * 228
