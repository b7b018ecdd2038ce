"""A washed-out photo brought back to a smear's usual stain strength.

An overexposed phone photo, or a pale stain, compresses every optical density towards the
background's; the rules that find nuclei, red cells and platelets hold absolute floors beside
their relative levels (a nucleus is violet above 0.30, whatever the field), and a smear faded to
0.4 of its density lost a third of its white cells to them (Bio-Net val tiles). Scaling the
optical density back restores what the camera compressed, for the classifier's crops too.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vision.field.scale import FIRST_SIDE, Reduced, background_colour, optical_density, reduced
from vision.field.surround import field_of_view
from vision.pixels import channel_mean, channel_sum

# The darkest percentile of a photo's summed optical density (inside its field of view) is its
# stain's strength: 1.0-1.2 at the 1st percentile of PBC, LISC, DeepAPL and Bio-Net images;
# BCCD's fields are the palest we have (a quarter under 1.0; 11 of 364 under 0.85, 0.69 the
# least).
STRENGTH_PERCENTILE = 99.0
# A photo weaker than nearly every smear we have is scaled up to it, by at most ``MAX_GAIN``; one
# weaker than ``NO_STAIN`` holds nothing to restore (a blank slide, a white wall). Bio-Net val
# tiles washed out to 0.4 of their density, first 30 fields: 0.83 of their white cells found
# (0.85 restored to 1.0, which would have changed a quarter of BCCD's fields).
USUAL_STRENGTH = 0.85
MAX_GAIN = 3.0
NO_STAIN = 0.15
# The strength is read from every third pixel each way of the scale's first copy: within 0.015
# of all of them at the median (0.09 at most, PBC and LISC) for a ninth of the work (8 ms a
# close-up).
SAMPLE_STRIDE = 3


def stain_strength(rgb: np.ndarray) -> tuple[float, np.ndarray]:
    """The stain's strength of ``rgb`` (HxWx3 floats) and its background colour."""
    inside = field_of_view(channel_mean(rgb))
    if not inside.any():
        return 0.0, np.full(3, 255.0)
    background = background_colour(rgb[inside]).clip(1, None)
    total = channel_sum(optical_density(rgb[inside], background))
    return float(np.percentile(total, STRENGTH_PERCENTILE)), background


def restore_gain(strength: float) -> float:
    """How much to scale a photo's optical density, given its stain's strength."""
    if strength < NO_STAIN or strength >= USUAL_STRENGTH:
        return 1.0
    return min(MAX_GAIN, USUAL_STRENGTH / strength)


def restored(image: Image.Image) -> tuple[Image.Image, Reduced]:
    """``image`` (RGB) with its optical density scaled up to a smear's usual strength where it
    is washed out (the same image otherwise), and its copy at the scale's first side (which
    measured it)."""
    first = reduced(image, FIRST_SIDE)
    strength, background = stain_strength(first[0][::SAMPLE_STRIDE, ::SAMPLE_STRIDE])
    gain = restore_gain(strength)
    if gain == 1.0:
        return image, first
    pixels = np.asarray(image, dtype=np.float32)
    ratio = np.clip(pixels / background, 1e-3, 1.0)
    # What is brighter than the background (glare, a brighter corner) stays as it was.
    out = np.where(pixels < background, background * ratio ** gain, pixels)
    image = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    return image, reduced(image, FIRST_SIDE)
