"""The dark surround of a photo, which is not part of the smear.

A phone photo through an eyepiece is a bright disc in a black surround; a crop shifted inside its
frame (as other laboratories' cell crops often are) has black bands. Both are dark regions that
reach the image's edge. Left in, they read as stain: the densest "cell" of all, which ruins the
scale's ruler and the share of stained pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

# Darker than this share of the image's bright pixels (its 95th percentile grey) is surround
# where it reaches the edge and is mostly black: no light at all, under ``BLACK_LEVEL`` (the
# darkest stain of BCCD, Bio-Net and PBC train images is 0.13 of their bright pixels). A dark red
# cell or nucleus cut by the edge of a heavily stained field reaches the first level, never the
# second.
SURROUND_LEVEL = 0.45
BLACK_LEVEL = 0.10
# Below this 95th-percentile grey there is no field of view at all (a black frame).
NO_LIGHT = 25.0
# Pixels this close to the surround are left out too: the rim of the field stop is blurred.
SURROUND_MARGIN = 3


def field_of_view(rgb: np.ndarray, level: float = SURROUND_LEVEL) -> np.ndarray:
    """Pixels of ``rgb`` (HxWx3) inside the field of view: not in a dark, mostly black region
    that reaches the image's edge, nor within ``SURROUND_MARGIN`` pixels of one."""
    grey = rgb.mean(axis=2)
    bright = float(np.percentile(grey, 95))
    if bright < NO_LIGHT:
        return np.zeros(grey.shape, dtype=bool)
    labels, count = ndi.label(grey < level * bright)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    black = np.bincount(labels.ravel(), weights=(grey < BLACK_LEVEL * bright).ravel(),
                        minlength=count + 1)
    area = np.bincount(labels.ravel(), minlength=count + 1)
    edge = edge[(edge > 0) & (black[edge] >= area[edge] / 2)]
    surround = np.isin(labels, edge)
    if not surround.any():
        return np.ones(grey.shape, dtype=bool)
    inside: np.ndarray = ~ndi.binary_dilation(surround, iterations=SURROUND_MARGIN)
    return inside
