"""The dark surround of a photo, which is not part of the smear.

A phone photo through an eyepiece is a bright disc in a black surround; a crop shifted inside its
frame (as other laboratories' cell crops often are) has black bands. Both are dark regions that
reach the image's edge. Left in, they read as stain: the densest "cell" of all, which ruins the
scale's ruler and the share of stained pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

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
    rim = (grey < level * bright) & (ndi.distance_transform_edt(~black) <= RIM_PX)
    inside: np.ndarray = ~ndi.binary_dilation(black | rim, iterations=SURROUND_MARGIN)
    return inside
