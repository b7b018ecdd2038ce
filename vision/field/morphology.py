"""Binary morphology exactly as scipy's, in linear time."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def dilate_by_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """``binary_dilation`` with ``disk(radius)``, exactly, via the distance transform.

    Scipy applies a structuring element pixel by pixel of its footprint, which for a radius of 9
    cost a field 100 ms; the Euclidean distance to the mask is linear time.
    """
    if not mask.any():
        return mask.copy()
    distance: np.ndarray = ndi.distance_transform_edt(~mask)
    return distance <= radius


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes``, exactly: background regions that do not reach the image edge.

    Scipy fills by dilating until nothing changes, which costs as many passes as a hole is wide.
    """
    outside, _ = ndi.label(~mask)  # the same 4-connectivity as binary_fill_holes
    edge = np.unique(np.concatenate([outside[0], outside[-1], outside[:, 0], outside[:, -1]]))
    return ~np.isin(outside, edge[edge > 0])


# Erosion and dilation by the 4-neighbour cross (scipy's default structure, and skimage's
# disk(1)), as four shifted logical operations a pass: scipy visits each pixel's neighbourhood
# in turn, about ten times as long (14 such passes a close-up cost 7 ms).


def eroded(mask: np.ndarray, times: int = 1) -> np.ndarray:
    """``binary_erosion`` by the cross, ``times`` over (by disk(2) for two), exactly: outside
    the image counts as background, as in scipy (``border_value=0``)."""
    out = mask.astype(bool)
    for _ in range(times):
        shrunk = out.copy()
        shrunk[1:] &= out[:-1]
        shrunk[:-1] &= out[1:]
        shrunk[:, 1:] &= out[:, :-1]
        shrunk[:, :-1] &= out[:, 1:]
        shrunk[[0, -1], :] = False
        shrunk[:, [0, -1]] = False
        out = shrunk
    return out


def dilated(mask: np.ndarray, times: int = 1) -> np.ndarray:
    """``binary_dilation`` by the cross, ``times`` over (``iterations``), exactly."""
    out = mask.astype(bool)
    for _ in range(times):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def opened(mask: np.ndarray) -> np.ndarray:
    """``binary_opening`` by the cross, exactly."""
    return dilated(eroded(mask))


def closed(mask: np.ndarray, times: int = 1) -> np.ndarray:
    """``binary_closing`` by the cross (by disk(2) for two), exactly: scipy's erosion step
    treats the outside as background too, so a closed mask loses its border pixels."""
    return eroded(dilated(mask, times), times)
