"""The dark surround of a photo, which is not part of the smear.

A phone photo through an eyepiece is a bright disc in a black surround; a crop shifted inside its
frame (as other laboratories' cell crops often are) has black bands. Both are dark regions that
reach the image's edge. Left in, they read as stain: the densest "cell" of all, which ruins the
scale's ruler and the share of stained pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from vision.field.morphology import dilated

# The surround is black: no light at all, under this share of the image's bright pixels (its
# 95th percentile grey), where it reaches the edge. The darkest stain of BCCD, Bio-Net and PBC
# train images is 0.13 of their bright pixels, so a dark red cell or nucleus cut by the edge of
# a heavily stained field is never taken for it.
BLACK_LEVEL = 0.10
# The field stop's blurred rim: pixels under this share, up to ``RIM_PX`` from the black. Not
# every such pixel connected to the black: a nucleus the rim cuts would go with it.
SURROUND_LEVEL = 0.45
RIM_PX = 6
# Below this 95th-percentile grey there is no field of view at all (a black frame).
NO_LIGHT = 25.0
# Pixels this close to the surround are left out too: JPEG rings and bleeds along its edge.
SURROUND_MARGIN = 3
# A defocused eyepiece's rim fades from black to the field over many pixels (a phone close-up of
# a 256 px tile, upscaled 6x: some 20 px at the scale's 384 px): a ring darker than the
# background, read as a stained object enclosing the whole field. The rim is measured: it ends
# at the first distance from the black where most pixels (the upper quartile: cells cover less
# of a band than the background) are this share as bright as the field beyond the rim's
# furthest reach, ``MAX_RIM_SHARE`` of the shorter side; or where, already at ``RIM_FLAT_FROM``
# of it, the brightness stops rising (less than ``RIM_FLAT_RISE`` over the next
# ``RIM_FLAT_BANDS`` bands): the field's own edge, darker than its centre where cells crowd it
# or the lamp falls off, is not rim (4 of Bio-Net val's 135 fields through an eyepiece read
# rims of 5.7-7.3% without this, against 1.6-2.3% with; phone close-ups' 2.1-5.2% unchanged).
RIM_QUANTILE = 75.0
MEASURED_RIM_SHARE = 0.028
RIM_END = 0.93
MAX_RIM_SHARE = 0.1
RIM_FLAT_FROM = 0.75
RIM_FLAT_RISE = 0.03
RIM_FLAT_BANDS = 3


def field_of_view(grey: np.ndarray, level: float = SURROUND_LEVEL) -> np.ndarray:
    """Pixels of an image (``grey``: its channel mean, HxW) inside the field of view: not in a
    black region that reaches the image's edge, nor in its dark rim, nor within
    ``SURROUND_MARGIN`` pixels of them."""
    bright = float(np.percentile(grey, 95))
    if bright < NO_LIGHT:
        return np.zeros(grey.shape, dtype=bool)
    labels, _ = ndi.label(grey < BLACK_LEVEL * bright)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    black = np.isin(labels, edge[edge > 0])
    if not black.any():
        return np.ones(grey.shape, dtype=bool)
    from_black = ndi.distance_transform_edt(~black)
    rim = (grey < level * bright) & (from_black <= RIM_PX)
    # Where the eyepiece's circle meets the image's edge, its rim reaches the edge without any
    # black before it: the edge is part of the surround there.
    border = np.zeros(grey.shape, dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    distance = ndi.distance_transform_edt(~(black | border))
    # A sharp edge (a shifted crop's black band: LISC's measure 0-2% of the longer side) and a
    # narrow rim (Bio-Net and BCCD val fields through a blurred eyepiece: 1.8-2.2%, at 384 px and
    # at the working scale alike, where cells the rim cuts still count) are the fixed rule's;
    # only a wider rim is measured out (a phone close-up of a 256 px tile, upscaled 6x: 3.4-5.2%).
    width = rim_width(grey, distance)
    if width > MEASURED_RIM_SHARE * max(grey.shape):
        rim |= distance <= width
    inside: np.ndarray = ~dilated(black | rim, SURROUND_MARGIN)
    return inside


def rim_width(grey: np.ndarray, distance: np.ndarray) -> int:
    """How far from the black (``distance``, in pixels) the surround's blurred rim reaches: the
    band of whole pixels before the first whose upper quartile is ``RIM_END`` as bright as the
    field beyond ``MAX_RIM_SHARE`` of the shorter side, or has stopped rising (``RIM_FLAT_*``);
    0 where the first band is, the cap where none is."""
    reach = max(1, int(MAX_RIM_SHARE * min(grey.shape)))
    beyond = grey[distance > reach]
    if not beyond.size:
        return reach
    field = float(np.percentile(beyond, RIM_QUANTILE))
    if field <= 0:
        return 0
    near = (distance > 0) & (distance <= reach)
    # uint16 bands sort by radix, in linear time.
    bands = np.ceil(distance[near]).astype(np.uint16)
    order = np.argsort(bands, kind="stable")
    values = grey[near][order]
    ends = np.searchsorted(bands[order], np.arange(1, reach + 1), side="right")
    # Each band's upper quartile as a share of the field's (NaN for an empty band).
    levels = [float(np.percentile(values[start:end], RIM_QUANTILE)) / field if end > start
              else float("nan") for start, end in zip(np.r_[0, ends[:-1]], ends, strict=True)]
    for band, here in enumerate(levels, start=1):
        later = levels[min(band + RIM_FLAT_BANDS, reach) - 1]
        if here >= RIM_END or (here >= RIM_FLAT_FROM and later - here < RIM_FLAT_RISE):
            return band - 1
    return reach
