"""The quality gate: is this photo sharp, well exposed and a stained smear at all?

Thresholds come from the BCCD training fields (clean against blurred, darkened and non-smear
versions); ``benchmarks/field_benchmark.py`` recomputes the accept/reject rates they give.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from core.field.detect import FieldMasks


@dataclass(frozen=True)
class QualityThresholds:
    # BCCD train fields: clean 7-10; Gaussian blur of sigma 1.2 px 1.9-2.3 (detection and
    # classification still hold); sigma 1.5 px 0.8-1.1; sigma 2 px 0.6-0.8. 1.5 sits between.
    min_focus: float = 1.5  # variance of the Laplacian of the grey working image
    min_brightness: float = 0.30
    max_clipped: float = 0.25
    # Clean BCCD fields: pale background >= 0.56 and stained >= 0.28 of the field (1st
    # percentiles); natural photos mostly fall below one of them.
    min_background: float = 0.40  # share of pale, unsaturated field around the cells
    min_stained: float = 0.15  # share of red-cell or nucleus pixels
    min_field: float = 0.15  # share of the photo inside the eyepiece circle


@dataclass(frozen=True)
class Quality:
    focus: float
    brightness: float
    clipped: float
    background: float
    stained: float
    field: float
    problem: str | None  # None when the photo passes
    message: str | None

    @property
    def passed(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


MESSAGES = {
    "no_field": "I can't see the microscope field: the photo is almost all dark. Hold the phone "
                "centred on the eyepiece and shoot again.",
    "not_a_smear": "This doesn't look like a stained blood smear. Please photograph a stained "
                   "peripheral blood smear through the microscope.",
    "dark": "The photo is too dark. Open the condenser or raise the lamp, then shoot again.",
    "overexposed": "The photo is overexposed (too much white). Lower the lamp and shoot again.",
    "blurred": "The photo is out of focus: tap the cells on the screen to focus before "
               "shooting, and keep the phone still.",
}


def measure(masks: FieldMasks,
            thresholds: QualityThresholds | None = None) -> Quality:
    t = thresholds or QualityThresholds()
    grey = masks.grey
    valid = masks.valid
    field = float(valid.mean())
    inside = grey[valid] if valid.any() else grey.ravel()
    brightness = float(inside.mean() / 255)
    clipped = float(((inside >= 250) | (inside <= 5)).mean())
    laplace = ndi.laplace(grey)
    focus = float(laplace[valid].var()) if valid.any() else 0.0
    balanced = masks.balanced
    red, green, blue = balanced[..., 0], balanced[..., 1], balanced[..., 2]
    # Elementwise over the three planes: numpy's reductions over a last axis of 3 are slow.
    saturation = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    pale = (balanced.mean(axis=2) > 190) & (saturation < 35) & valid
    stained = ((balanced[..., 0] - balanced[..., 2] > 8) | (masks.purple > 50)) & valid
    background = float(pale.sum() / max(valid.sum(), 1))
    stained_share = float(stained.sum() / max(valid.sum(), 1))
    problem = None
    if field < t.min_field:
        problem = "no_field"
    elif brightness < t.min_brightness:
        problem = "dark"
    elif clipped > t.max_clipped:
        problem = "overexposed"
    elif background < t.min_background or stained_share < t.min_stained:
        problem = "not_a_smear"
    elif focus < t.min_focus:
        problem = "blurred"
    return Quality(round(focus, 2), round(brightness, 4), round(clipped, 4), round(background, 4),
                   round(stained_share, 4), round(field, 4), problem,
                   MESSAGES[problem] if problem else None)
