"""Finding white cells, red cells and platelets in a stained smear field.

Colour rules, not a trained detector: relative to the field's own background, the nuclei of white
cells (and platelets) are the objects that absorb green light far more than blue (violet, in
Romanowsky stains of any make: May-Grünwald-Giemsa, Wright, Leishman, Field's), whatever tint
the red cells and the background take; red cells are the other objects that absorb light. All
sizes are in pixels of a working image resampled so that a red cell measures
``WORK_RED_CELL_PX`` across (``vision.field.scale`` measures it in each image).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_objects

from vision.field.morphology import closed, dilate_by_disk, fill_holes, opened
from vision.field.scale import (
    NUCLEUS_OVER_STAINED,
    NUCLEUS_VIOLET,
    background_colour,
    nucleus_level,
    optical_density,
    typical_violets,
)
from vision.field.surround import SURROUND_LEVEL, field_of_view
from vision.pixels import channel_mean, channel_sum, rgb

Box = tuple[int, int, int, int]
# A red cell's diameter in the working image: BCCD's 640 px fields at half size, the scale at
# which the red-cell network was trained. Every photo is resampled to it.
WORK_RED_CELL_PX = 51.0
# The working image never grows past this side (a low-magnification 48 MP photo), nor shrinks
# below the other: beyond them the cells are measured at another scale than nominal.
MAX_WORK_SIDE = 4096
MIN_WORK_SIDE = 64
# The value the background's colour is balanced to, in every channel.
BALANCED_WHITE = 230.0


@dataclass(frozen=True)
class DetectorParams:
    """Sizes in working-image pixels (a red cell about 51 px across)."""

    # Violet: optical density in green minus that in blue, relative to the background.
    nucleus_violet: float = NUCLEUS_VIOLET
    nucleus_over_stained: float = NUCLEUS_OVER_STAINED  # times as violet as the field's stain
    # The last look, where the red cells take up violet themselves (``detect_white_cells``).
    nucleus_over_violet_stain: float = 2.0
    platelet_violet: float = 0.15
    min_nucleus_area: int = 900  # smaller violet blobs are platelets or their clumps
    cut_nucleus_share: float = 0.5  # of that area, for a nucleus cut by the edge or vignette
    lobe_join_radius: int = 7
    wbc_margin: float = 0.12  # cytoplasm rim, as a share of the nucleus box's longer side
    min_wbc_side: int = 45
    platelet_area: tuple[int, int] = (12, 375)
    # Platelet granules are blue-violet, while the faint purple rims of red cells stay reddish:
    # optical density in red above that in blue.
    platelet_blue_excess: float = 0.10
    platelet_pad: int = 4  # the stained granulomere sits inside a paler hyalomere
    # Red cells absorb green: 255 minus balanced green. The background sits near 25; the field's
    # own Otsu split (53-66 on BCCD train) is used, never below this floor.
    rbc_min_darkness: float = 40.0
    rbc_min_distance: int = 17  # between the centres of two red cells in one clump
    rbc_min_radius: float = 10.0  # a centre lies at least this deep inside the red-cell mask
    rbc_min_area: int = 750  # a blob with no such centre counts as one cell from this area
    vignette_level: float = SURROUND_LEVEL  # the dark surround is not field


def box_centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


@dataclass(frozen=True)
class Detection:
    kind: str  # "wbc", "rbc", "platelet"
    box: Box  # in working-image pixels
    at_border: bool
    score: float  # strength of the evidence (stain or distance), for ordering only

    @property
    def centre(self) -> tuple[float, float]:
        return box_centre(self.box)


@dataclass(frozen=True)
class FieldMasks:
    valid: np.ndarray  # inside the field of view (not vignette)
    background: np.ndarray  # RGB white point used for balancing
    purple: np.ndarray  # violet: optical density in green minus blue, 0 outside the field
    blue_excess: np.ndarray  # optical density in red minus blue
    grey: np.ndarray  # channel mean, unbalanced
    balanced: np.ndarray  # RGB white-balanced on ``background``
    # Violet typical of the field's stained pixels (mostly red cells): nuclei stand out from it.
    stained_violet: float
    # The stained pixels' lower quartile: the typical stain of a tight crop, where the median
    # pixel is nuclear (``vision.field.scale.PALE_STAIN_PERCENTILE``).
    pale_violet: float
    density: np.ndarray  # optical density per channel relative to the background (HxWx3)

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """The background as 8-bit RGB, to pad a crop with."""
        red, green, blue = (int(v) for v in self.background.clip(0, 255))
        return red, green, blue


def working_factor(size: tuple[int, int], red_cell_px: float) -> float:
    """How much to resample an image of ``size`` whose red cells measure ``red_cell_px``."""
    factor = WORK_RED_CELL_PX / red_cell_px
    longer = max(size)
    return min(max(factor, MIN_WORK_SIDE / longer), MAX_WORK_SIDE / longer)


def working_image(image: Image.Image, red_cell_px: float) -> tuple[Image.Image, float]:
    """The image at the working scale; the factor from original to working pixels.

    Large reductions start with a cheap box reduction by an integer factor.
    """
    target = working_factor(image.size, red_cell_px)
    reduced = image
    if target < 0.5:
        reduced = image.reduce(int(1 / target))
    size = (max(1, round(image.width * target)), max(1, round(image.height * target)))
    if reduced.size != size:
        reduced = reduced.resize(size, Image.Resampling.BILINEAR)
    return reduced, reduced.width / image.width


def field_masks(rgb: np.ndarray, params: DetectorParams) -> FieldMasks:
    grey = channel_mean(rgb)
    valid = field_of_view(grey, params.vignette_level)
    pixels = rgb[valid] if valid.any() else rgb.reshape(-1, 3)
    # Balancing on the background undoes colour casts.
    background = background_colour(pixels).clip(1, None)
    balanced = rgb * (BALANCED_WHITE / background)
    density = optical_density(rgb, background)
    purple = density[..., 1] - density[..., 2]
    blue_excess = density[..., 0] - density[..., 2]
    stained_violet, pale_violet = typical_violets(purple[valid], channel_sum(density)[valid])
    return FieldMasks(valid, background, np.where(valid, purple, 0), blue_excess, grey, balanced,
                      stained_violet, pale_violet, density)


def working_masks(image: Image.Image, red_cell_px: float,
                  params: DetectorParams) -> tuple[FieldMasks, float]:
    """``image`` at the working scale, as masks; the factor from its pixels to the working ones."""
    work, factor = working_image(rgb(image), red_cell_px)
    return field_masks(np.asarray(work, dtype=np.float32), params), factor


def contains(box: tuple[float, ...], x: float, y: float) -> bool:
    """Whether the point lies in the box (``x0 <= x < x1``, ``y0 <= y < y1``)."""
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def touches_border(box: Box, valid: np.ndarray, shape: tuple[int, int]) -> bool:
    x0, y0, x1, y1 = box
    height, width = shape
    if x0 <= 1 or y0 <= 1 or x1 >= width - 1 or y1 >= height - 1:
        return True
    edge = np.concatenate([valid[y0, x0:x1], valid[y1 - 1, x0:x1], valid[y0:y1, x0],
                           valid[y0:y1, x1 - 1]])
    return bool((~edge).any())


def detect_white_cells(masks: FieldMasks, params: DetectorParams) -> list[Detection]:
    """White cells, by their nuclei: violet well above the field's typical stain, or above a
    tight crop's (its pale quartile) where nothing stands out from the median, or, last, less
    far above the typical stain.

    The last look is for stains whose red cells take up violet themselves (LISC's Gismo-Right:
    lavender red cells at 0.32, their nuclei at 0.6-0.85, never three times the red cells): it
    found the white cell in 77 of the 81 LISC crops where the first two found none, and no
    white cell in any PBC val platelet crop (nothing found in them either way).
    """
    return (_white_cells_above(masks, params, masks.stained_violet, params.nucleus_over_stained)
            or _white_cells_above(masks, params, masks.pale_violet, params.nucleus_over_stained)
            or _white_cells_above(masks, params, masks.stained_violet,
                                  params.nucleus_over_violet_stain))


def _white_cells_above(masks: FieldMasks, params: DetectorParams, typical: float,
                       times: float) -> list[Detection]:
    level = nucleus_level(typical, params.nucleus_violet, times)
    nucleus = closed(masks.purple > level)
    nucleus = fill_holes(nucleus)
    nucleus = remove_small_objects(nucleus, max_size=params.min_nucleus_area // 4)
    # Lobes of one segmented neutrophil lie close together: join them before labelling.
    joined = dilate_by_disk(nucleus, params.lobe_join_radius)
    labels, _ = ndi.label(joined)
    height, width = nucleus.shape
    found = []
    for index, region in enumerate(ndi.find_objects(labels), start=1):
        if region is None:
            continue
        own = nucleus[region] & (labels[region] == index)
        area = int(own.sum())
        ys, xs = np.nonzero(own)
        if not len(ys):
            continue
        y0, y1 = ys.min() + region[0].start, ys.max() + region[0].start + 1
        x0, x1 = xs.min() + region[1].start, xs.max() + region[1].start + 1
        # A nucleus cut by the image edge or the vignette shows only part of its area.
        cut = touches_border((x0, y0, x1, y1), masks.valid, nucleus.shape)
        if area < params.min_nucleus_area * (params.cut_nucleus_share if cut else 1.0):
            continue
        # The cytoplasm rim is about equally thick all round, in proportion to the nucleus.
        pad = params.wbc_margin * max(x1 - x0, y1 - y0)
        pad_x = max(pad, (params.min_wbc_side - (x1 - x0)) / 2)
        pad_y = max(pad, (params.min_wbc_side - (y1 - y0)) / 2)
        box = (max(0, round(x0 - pad_x)), max(0, round(y0 - pad_y)),
               min(width, round(x1 + pad_x)), min(height, round(y1 + pad_y)))
        score = float(masks.purple[region][own].mean())
        found.append(Detection("wbc", box, touches_border(box, masks.valid, nucleus.shape),
                               score))
    return found


def detect_platelets(masks: FieldMasks, white: list[Detection],
                     params: DetectorParams) -> list[Detection]:
    stained = masks.purple > params.platelet_violet
    for cell in white:
        x0, y0, x1, y1 = cell.box
        stained[y0:y1, x0:x1] = False
    labels, _ = ndi.label(stained)
    found = []
    low, high = params.platelet_area
    for index, region in enumerate(ndi.find_objects(labels), start=1):
        if region is None:
            continue
        own = labels[region] == index
        area = int(own.sum())
        if not low <= area <= high:
            continue
        if float(masks.blue_excess[region][own].mean()) < params.platelet_blue_excess:
            continue
        pad = params.platelet_pad
        box = (max(0, region[1].start - pad), max(0, region[0].start - pad),
               min(stained.shape[1], region[1].stop + pad),
               min(stained.shape[0], region[0].stop + pad))
        found.append(Detection("platelet", box, touches_border(box, masks.valid, stained.shape),
                               float(masks.purple[region][own].max())))
    return found


def red_cell_mask(masks: FieldMasks, params: DetectorParams) -> np.ndarray:
    """Pixels of the field of view that belong to red cells, pale centres not yet filled.

    Stain thickness and exposure move the split between red cells and background from field to
    field, so the field's own histogram sets it. Purple (nuclei, platelets) is left out.
    """
    darkness = 255.0 - masks.balanced[..., 1]
    inside = darkness[masks.valid]
    if not inside.size:
        return np.zeros_like(masks.valid)
    level = max(float(threshold_otsu(inside)), params.rbc_min_darkness)
    mask: np.ndarray = (darkness > level) & masks.valid & (masks.purple < params.platelet_violet)
    return mask


def detect_red_cells(masks: FieldMasks, white: list[Detection],
                     params: DetectorParams) -> list[Detection]:
    """Red cells, one detection each, including those in touching and overlapping clumps.

    Each cell is a peak of the distance to the mask's edge: overlapping biconcave discs keep a
    waist between them, so their centres stay separate peaks. A blob too thin or ragged for a
    peak still counts once if it is large enough for a cell. Known weakness: where three cells
    overlap in a triangle, the middle can form one more peak.
    """
    red = opened(red_cell_mask(masks, params))
    # Fill the pale centres of biconcave cells so each cell is one blob.
    red = fill_holes(closed(red, 2))
    for cell in white:
        x0, y0, x1, y1 = cell.box
        red[y0:y1, x0:x1] = False
    labels, _ = ndi.label(red)
    distance = ndi.distance_transform_edt(red)
    peaks = peak_local_max(distance, min_distance=params.rbc_min_distance,
                           threshold_abs=params.rbc_min_radius, labels=labels,
                           exclude_border=False)
    height, width = red.shape
    found = []
    for y, x in peaks:
        radius = float(distance[y, x])
        box = (max(0, round(x - radius)), max(0, round(y - radius)),
               min(width, round(x + radius)), min(height, round(y + radius)))
        found.append(Detection("rbc", box, touches_border(box, masks.valid, red.shape), radius))
    with_peak = set(labels[peaks[:, 0], peaks[:, 1]].tolist()) if len(peaks) else set()
    for index, region in enumerate(ndi.find_objects(labels), start=1):
        if region is None or index in with_peak:
            continue
        if int((labels[region] == index).sum()) < params.rbc_min_area:
            continue
        box = (region[1].start, region[0].start, region[1].stop, region[0].stop)
        found.append(Detection("rbc", box, touches_border(box, masks.valid, red.shape),
                               float(distance[region].max())))
    return found


# Finds the red cells of a field, given its masks and its white cells: the colour rule below, or
# a trained network (``vision.field.learned_red_cells``).
RedCellFinder = Callable[[FieldMasks, list[Detection]], list[Detection]]


def colour_rule(params: DetectorParams) -> RedCellFinder:
    return partial(detect_red_cells, params=params)


def find_cells(masks: FieldMasks, params: DetectorParams, red_cells: RedCellFinder | None = None,
               ) -> tuple[list[Detection], list[Detection], list[Detection]]:
    """White cells, platelets and red cells (by ``red_cells``, the colour rule if unset)."""
    white = detect_white_cells(masks, params)
    platelets = detect_platelets(masks, white, params)
    return white, platelets, (red_cells or colour_rule(params))(masks, white)


def detect(image: Image.Image, red_cell_px: float, params: DetectorParams | None = None,
           red_cells: RedCellFinder | None = None,
           ) -> tuple[list[Detection], FieldMasks, float]:
    """All cells in ``image`` whose red cells measure ``red_cell_px``; boxes in working-image
    pixels, with the factor from the original to the working image."""
    params = params or DetectorParams()
    masks, factor = working_masks(image, red_cell_px, params)
    white, platelets, red = find_cells(masks, params, red_cells)
    return white + platelets + red, masks, factor
