"""The quality gate: is this photo sharp, well exposed and a stained smear at all?

Judged on the working image (scale measured, colour relative to the field's own background);
``benchmarks/cross_lab.py`` recomputes the accept and reject rates the thresholds give.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from vision.field.detect import FieldMasks
from vision.field.morphology import dilate_by_disk
from vision.field.scale import STAINED_DENSITY

# The two bands whose energies ``sharpness`` compares, in the pixels focus is judged at (the
# working image's, where a red cell is 51, or the photo's own where that is coarser), and the
# rim of the field of view left out of it (three times the coarse band).
FOCUS_FINE_PX = 1.0
FOCUS_COARSE_PX = 3.0
FOCUS_RIM_PX = 9

# Optical density by which green may fall short of the other channels in a stain-coloured pixel,
# and the least spread between its channels, as a share of its total.
STAIN_MARGIN = 0.05
STAIN_CHROMA = 0.06
# Optical density by which blue must exceed green for a stained pixel to read as yellow, orange
# or brown: skin, wood, DAB. Romanowsky stains give none of these (eosin, the orange-pink of red
# cells, absorbs green most). Smaller margins take in the pale edges of red cells: at 0.05 up to
# 0.30 of BCCD train's stained pixels and 0.46 of Bio-Net train's, at 0.10 0.07 and 0.21, at
# 0.15 0.01 and 0.12.
BROWN_MARGIN = 0.15


@dataclass(frozen=True)
class QualityThresholds:
    """Measured on the working image (colour relative to the background, scale normalised), so
    one set serves every laboratory. Chosen on BCCD and Bio-Net train fields and PBC train
    crops against blurred, darkened, over-exposed and non-smear images (BENCHMARKS.md)."""

    # Sharpness (``sharpness``): the lowest 1st percentile of the clean train images of every
    # set, size and framing.
    min_focus: float = 3.95
    # Focus at the red cells' own reading, where the white cells set the scale: between blurred
    # train fields taken for close-ups and the clean white-cell crops the ruler is for.
    min_focus_at_red_cells: float = 3.5
    min_brightness: float = 0.30
    max_clipped: float = 0.25
    # ... but only with the stain washed out (between over-exposed and clean train images). A
    # channel saturated in the stained pixels is no sign by itself: some analysers' clean crops
    # saturate blue as much as over-exposed fields saturate red.
    min_stain_when_clipped: float = 0.20
    # Clean fields' 1st percentiles, lowered for the background to admit tight crops around one
    # white cell; noise, blank slides, grey pictures and most photographs fall below one.
    min_background: float = 0.13
    min_stained: float = 0.10
    # Share of stained pixels that are brown (``BROWN_MARGIN``): Romanowsky stains give none
    # (clean train images at most half this); skin, wood and DAB give several times more.
    max_brown: float = 0.25
    min_field: float = 0.15  # share of the photo inside the eyepiece circle


@dataclass(frozen=True)
class Quality:
    focus: float
    brightness: float
    clipped: float
    background: float
    stained: float
    brown: float
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


def refused_after_all(quality: Quality, problem: str, focus: float | None = None) -> Quality:
    """``quality``, which the gate passed, refused for ``problem`` found after it by the
    analysis (``vision.field.analyse``): blurred at the red cells' own scale (the ``focus`` read
    there), or not a smear where no blood cell was found at all."""
    refused = replace(quality, problem=problem, message=MESSAGES[problem])
    return refused if focus is None else replace(refused, focus=round(focus, 2))


def sharpness(grey: np.ndarray, valid: np.ndarray) -> float:
    """Fine detail against coarse (x 100): the Laplacian of Gaussian's variance at 1 px over
    its variance at 3 px (scale-normalised), at the working scale. Blur takes the fine band away
    far faster than the coarse one, and the ratio does not depend on how strongly the smear is
    stained nor on how much of the image one large cell fills (the Laplacian's variance over the
    image's, used before, read a tight crop of one cell as soft: 9% of Bio-Net train's tight
    crops were refused).
    The field of view's rim (an eyepiece's, a shifted crop's black bands) is left out."""
    if not valid.any():
        return 0.0
    inside = valid & ~dilate_by_disk(~valid, FOCUS_RIM_PX)
    if not inside.any():  # a field of view too small to lose its rim is judged whole
        inside = valid
    grey = grey.astype(np.float64)
    coarse = _band_energy(grey, inside, FOCUS_COARSE_PX)
    return 100.0 * _band_energy(grey, inside, FOCUS_FINE_PX) / coarse if coarse > 1e-9 else 0.0


def _band_energy(grey: np.ndarray, inside: np.ndarray, sigma: float) -> float:
    return float((sigma ** 2 * ndi.gaussian_laplace(grey, sigma))[inside].var())


def focus_of(masks: FieldMasks, upsampled: float = 1.0) -> float:
    """``sharpness`` of the working image, or, where it was enlarged from the photo
    (``upsampled`` > 1), of the photo's own pixels: interpolation adds no detail."""
    if upsampled <= 1.0:
        return sharpness(masks.grey, masks.valid)
    # Edges repeated, not zero: with "constant", rounding left the last row black, and that one
    # edge outweighed the whole image's detail (a blurred field enlarged by 2% read sharp).
    return sharpness(ndi.zoom(masks.grey, 1 / upsampled, order=1, mode="nearest"),
                     ndi.zoom(masks.valid.astype(np.uint8), 1 / upsampled, order=0,
                              mode="nearest") > 0)


def measure(masks: FieldMasks, thresholds: QualityThresholds | None = None,
            upsampled: float = 1.0) -> Quality:
    """The photo's quality from its working image's masks; ``upsampled`` > 1 when the working
    image was enlarged from the photo, whose own pixels then carry its sharpness."""
    t = thresholds or QualityThresholds()
    grey = masks.grey
    valid = masks.valid
    field = float(valid.mean())
    inside = grey[valid] if valid.any() else grey.ravel()
    brightness = float(inside.mean() / 255)
    clipped = float(((inside >= 250) | (inside <= 5)).mean())
    focus = focus_of(masks, upsampled)
    density = masks.density
    red, green, blue = density[..., 0], density[..., 1], density[..., 2]
    total = red + green + blue
    count = max(int(valid.sum()), 1)
    stained = (total > STAINED_DENSITY) & valid
    background = float(((total < STAINED_DENSITY) & valid).sum() / count)
    # Romanowsky stains absorb green at least as much as blue (eosin in red cells, azure-eosin
    # in nuclei; red cells of some stains absorb red most): yellow, orange and green things
    # (blue, or red and blue, absorbed; green passed) are not stain.
    # Grey things absorb every colour alike: a stain is a colour.
    chroma = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    stain_coloured = stained & (green + STAIN_MARGIN >= blue) & (
        green + STAIN_MARGIN >= np.minimum(red, blue)) & (chroma > STAIN_CHROMA * total)
    stained_share = float(stain_coloured.sum() / count)
    brown = float((stained & (blue > green + BROWN_MARGIN)).sum() / max(int(stained.sum()), 1))
    problem = None
    if field < t.min_field:
        problem = "no_field"
    elif brightness < t.min_brightness:
        problem = "dark"
    elif clipped > t.max_clipped and stained_share < t.min_stain_when_clipped:
        # A white, clipped background is common (an analyser's crop, a bright lamp); it is
        # over-exposure when the stain itself has washed out with it.
        problem = "overexposed"
    elif (background < t.min_background or stained_share < t.min_stained
          or brown > t.max_brown):
        problem = "not_a_smear"
    elif focus < t.min_focus:
        problem = "blurred"
    return Quality(round(focus, 2), round(brightness, 4), round(clipped, 4), round(background, 4),
                   round(stained_share, 4), round(brown, 4), round(field, 4), problem,
                   MESSAGES[problem] if problem else None)
