"""The scale of a smear photo, measured from what it shows: red cells are the ruler.

A red cell is about 7.5 µm across whatever the microscope, camera or resolution, so the size of
the cells in pixels gives pixels per micrometre. The size comes from a granulometry of the cells'
mask: the radius of the disk whose opening keeps half of the stained area is the typical half
width of a cell. Unlike peaks of a distance transform it is carried by area, so specks, pale
centres and broken rims weigh little, and touching cells keep their own width.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from vision.field.morphology import fill_holes, opened
from vision.field.surround import field_of_view
from vision.pixels import channel_mean, channel_sum, rgb

RED_CELL_UM = 7.5
# A white cell's typical diameter (its detected box): the ruler where red cells are too few.
# PBC train's detected white cells (at PBC's true scale) and Bio-Net train's boxed ones measure
# 14.5 and 13.2 µm at the median.
TYPICAL_WHITE_CELL_UM = 13.5
# The granulometric half width is this share of the red cell's box side (the box annotators
# draw): measured on BCCD and Bio-Net train fields, 0.81 and 0.86 (their mean is used).
HALF_WIDTH_TO_DIAMETER = 2 / 0.84
# The first measurement runs on the image reduced to this side; if the cells come out smaller
# than ``MIN_CELL_PX`` there, it is repeated at a resolution where they measure ``GOOD_CELL_PX``.
FIRST_SIDE = 384
MIN_CELL_PX = 16.0
GOOD_CELL_PX = 28.0
MAX_SIDE = 2048
# With no red cell to measure, an image is taken to be framed like PBC's (its red cells are 56 px
# across in our 256 px copies).
DEFAULT_RED_CELL_SHARE = 56 / 256


@dataclass(frozen=True)
class Scale:
    """Pixels per micrometre of an image, and the red-cell diameter it was read from."""

    red_cell_px: float  # typical red-cell diameter in pixels of the original image
    measured: bool  # False: nothing to measure (a blank or uniform image); a default was used
    ruler: str = "red cells"  # or "white cells", where the red cells' reading was implausible
    # Where the white cells are the ruler, what the red cells read (None if nothing): the gate
    # judges focus at it too (``vision.field.analyse``).
    red_cells_px: float | None = None

    @property
    def px_per_um(self) -> float:
        return self.red_cell_px / RED_CELL_UM

    def to_dict(self) -> dict[str, object]:
        return {"red_cell_px": round(self.red_cell_px, 1),
                "px_per_um": round(self.px_per_um, 3), "measured": self.measured,
                "ruler": self.ruler}


# An image's pixels (float RGB) reduced to a side, and the factor from its own pixels to them.
Reduced = tuple[np.ndarray, float]


def reduced(image: Image.Image, side: int) -> Reduced:
    factor = min(1.0, side / max(image.size))
    if factor < 1:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BOX)
    return np.asarray(rgb(image), dtype=np.float32), factor


# Violet (optical density in green minus blue) that marks a nucleus: above this, and this many
# times the field's typical stained pixel (as in ``vision.field.detect``).
NUCLEUS_VIOLET = 0.30
NUCLEUS_OVER_STAINED = 3.0
# Optical density (summed over the channels) above which a pixel is stained, not background.
STAINED_DENSITY = 0.25
# Red cells must keep this share of the stained area for the nucleated cells to be left out.
MIN_RED_SHARE = 0.15
# In a crop the white cell fills, the split between background and cells can fall between its
# cytoplasm and its nucleus, and the nucleated objects are little more than their nuclei: the
# white cells are split again at the lowest of three levels to take their cytoplasm in. Not
# where the nucleated objects already cover over half the image: there they hold the crowded
# cells they touch (PBC's crowded close-ups), and a lower level only fills the gaps between.
MAX_NUCLEATED_SHARE_FOR_PALE = 0.5


# The background is the brightest common colour: this percentile of the pixels, per channel.
BACKGROUND_PERCENTILE = 90


def background_colour(pixels: np.ndarray) -> np.ndarray:
    """The background colour (RGB, float) of ``pixels`` (N x 3, or H x W x 3)."""
    colour: np.ndarray = np.percentile(pixels.reshape(-1, 3), BACKGROUND_PERCENTILE, axis=0)
    return colour


def optical_density(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Optical density per channel relative to ``background``: zero there, growing with any
    stain; capped at 5% transmission, where the sensor's noise and JPEG's rounding are all that
    is left."""
    density: np.ndarray = -np.log(np.clip(rgb / background, 0.05, 1.0))
    return density


# A tight crop around one white cell is mostly nucleus and cytoplasm: its median stained pixel
# is nuclear itself and nothing clears three times it. Where nothing does, the stained pixels'
# lower quartile (the pale cytoplasm and the red cells cut by the crop's edge) is taken as the
# typical stain instead. On Bio-Net val's tight crops (the box and 15%) this finds the white cell
# in 87% of them, against 64%. As the only level it costs fields dearly (Bio-Net val white-cell
# precision 0.97 -> 0.60): in a field the median is right, so it is only a second look.
PALE_STAIN_PERCENTILE = 25.0


def typical_violets(violet: np.ndarray, total: np.ndarray) -> tuple[float, float]:
    """Violet of the field's typical stained pixel (mostly red cells, in a field or a close-up)
    and of its pale quartile (``PALE_STAIN_PERCENTILE``, for the second look at a tight crop)."""
    stained = total > STAINED_DENSITY
    if not stained.any():
        return 0.0, 0.0
    typical, pale = np.percentile(violet[stained], [50.0, PALE_STAIN_PERCENTILE])
    return float(typical), float(pale)


def nucleus_level(typical: float, floor: float = NUCLEUS_VIOLET,
                  times: float = NUCLEUS_OVER_STAINED) -> float:
    """The violet above which a pixel is nucleus, in a field whose typical stain is ``typical``."""
    return max(floor, times * typical)


@dataclass(frozen=True)
class CellMasks:
    red: np.ndarray  # cells without a nucleus
    nucleated: np.ndarray  # stained objects holding a nucleus (white cells, erythroblasts)
    # The nucleated objects with their pale cytoplasm (``MAX_NUCLEATED_SHARE_FOR_PALE``).
    white: np.ndarray

    @property
    def enough_red(self) -> bool:
        """Red cells keep enough of the stained area to be the ruler."""
        return bool(self.red.sum() >= MIN_RED_SHARE * (self.red.sum() + self.nucleated.sum()))

    @cached_property
    def whole_red(self) -> int:
        """Red cells (and specks) that do not touch the image's edge."""
        labels, count = ndi.label(self.red)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        return int(count) - int((edge > 0).sum())


def cell_masks(rgb: np.ndarray) -> CellMasks:
    """Cells against the background, in any stain, split into those without a nucleus (red
    cells) and those with one.

    The dark surround (an eyepiece's, a shifted crop's black bands) is left out. The background
    is the brightest common colour; optical density relative to it is zero there and grows with
    any stain, whatever its hue. Cells are split from the background by Otsu's
    threshold over the pixels outside nuclei, so a dark nucleus does not set the split.
    """
    inside = field_of_view(channel_mean(rgb))
    empty = np.zeros(inside.shape, dtype=bool)
    if not inside.any():
        return CellMasks(empty, empty, empty)
    background = background_colour(rgb[inside]).clip(1, None)
    density = optical_density(rgb, background)
    total = np.where(inside, channel_sum(density), 0.0)
    violet = np.where(inside, density[..., 1] - density[..., 2], 0.0)
    typical, pale = typical_violets(violet[inside], total[inside])
    nucleus = violet > nucleus_level(typical)
    if not nucleus.any():
        nucleus = violet > nucleus_level(pale)
    rest = total[inside & ~nucleus]
    if rest.size < 20 or float(rest.max()) - float(rest.min()) < 1e-3:
        return CellMasks(empty, empty, empty)
    level = float(threshold_otsu(rest))
    mask = _stained_objects(total > level, inside)
    objects, count = ndi.label(mask)
    nucleus = _substantial(nucleus & mask, objects, count)
    nucleated = _objects_holding(objects, nucleus)
    white = nucleated
    if nucleated.sum() <= MAX_NUCLEATED_SHARE_FOR_PALE * inside.sum():
        white = _holding(_stained_objects(total > _pale_level(rest, level), inside), nucleus)
    return CellMasks(mask & ~nucleated, nucleated, white)


def _stained_objects(stained: np.ndarray, inside: np.ndarray) -> np.ndarray:
    return fill_holes(opened(stained & inside))


# A nucleus is as thick as a good share of the cell that holds it (a white cell's lobes, an
# erythroblast's nucleus, a platelet); the dark specks many red cells show (BCCD's crenated
# cells, stain precipitate) are not, and made whole fields of red cells "nucleated". Chosen on
# BCCD val and Bio-Net train and val fields and crops against their red-cell boxes (BENCHMARKS.md).
NUCLEUS_DEPTH_SHARE = 0.1


def _substantial(nucleus: np.ndarray, objects: np.ndarray, count: int) -> np.ndarray:
    """The parts of ``nucleus`` at least ``NUCLEUS_DEPTH_SHARE`` as deep (their inscribed
    radius) as the object they lie in (``objects``: a mask's ``count`` labelled objects)."""
    if not nucleus.any():
        return nucleus
    object_depth = _deepest(ndi.distance_transform_edt(objects > 0), objects, count)
    parts, part_count = ndi.label(nucleus)
    # Within the nuclei's rows and columns and one more of background: the same distances as
    # over the whole image (``half_width``), for a fraction of it.
    window = _bounds(nucleus, 1)
    depth = np.zeros(nucleus.shape)
    depth[window] = ndi.distance_transform_edt(nucleus[window])
    part_depth = _deepest(depth, parts, part_count)
    owner = np.zeros(part_count + 1, dtype=np.int64)
    owner[parts[nucleus]] = objects[nucleus]
    keep = part_depth >= NUCLEUS_DEPTH_SHARE * object_depth[owner]
    keep[0] = False
    kept: np.ndarray = keep[parts]
    return kept


def _deepest(depth: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """The greatest ``depth`` in each label (index 0: the background)."""
    deepest = np.zeros(count + 1)
    inside = labels > 0
    np.maximum.at(deepest, labels[inside], depth[inside])
    return deepest


def _holding(mask: np.ndarray, nucleus: np.ndarray) -> np.ndarray:
    """The objects of ``mask`` that hold some of ``nucleus``."""
    return _objects_holding(ndi.label(mask)[0], nucleus)


def _objects_holding(objects: np.ndarray, nucleus: np.ndarray) -> np.ndarray:
    """The labelled ``objects`` that hold some of ``nucleus``."""
    held = np.unique(objects[nucleus])
    return np.isin(objects, held[held > 0])


def _pale_level(rest: np.ndarray, level: float) -> float:
    """The lowest of three Otsu levels over ``rest`` (background, pale cytoplasm, the rest),
    never above the two-level split."""
    try:
        return min(level, float(threshold_multiotsu(rest, classes=3)[0]))
    except ValueError:  # too few distinct values for three classes
        return level


def _opened_share(mask: np.ndarray, depth: np.ndarray, radius: float, total: int) -> float:
    """Share of the mask that an opening by a disk of ``radius`` keeps."""
    core = depth > radius
    if not core.any():
        return 0.0
    # Only pixels within ``radius`` of the core can be kept, and the core's nearest pixel to
    # any of them lies inside this window: the distances there are the whole image's.
    window = _bounds(core, int(np.ceil(radius)) + 1)
    kept = ndi.distance_transform_edt(~core[window]) <= radius
    return float((kept & mask[window]).sum()) / total


def _bounds(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The rows and columns of ``mask``'s pixels, ``margin`` more on each side (within it)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(max(0, rows[0] - margin), rows[-1] + margin + 1),
            slice(max(0, cols[0] - margin), cols[-1] + margin + 1))


# Twelve halvings narrow the radius to 1/4096 of the deepest point: below a pixel for any cell.
BISECTION_STEPS = 12


def half_width(mask: np.ndarray) -> float | None:
    """The radius at which an opening keeps half of the mask (bisection; monotone in r)."""
    total = int(mask.sum())
    if total < 20:
        return None
    # The mask's own rows and columns and one more of background on each side: beyond them is
    # background too, so every distance below is the whole image's (a close-up's white cell
    # fills a fraction of it).
    mask = mask[_bounds(mask, 1)]
    depth = ndi.distance_transform_edt(mask)
    low, high = 0.5, float(depth.max())
    if high <= low:
        return None
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if _opened_share(mask, depth, middle, total) >= 0.5:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def image_scale(image: Image.Image, first: Reduced | None = None) -> Scale:
    """The scale of ``image``: from its red cells, or PBC's framing if there are none
    (``first``: its copy at ``FIRST_SIDE``, where the caller already has it)."""
    return measure_scale(image, DEFAULT_RED_CELL_SHARE * max(image.size), first)


# The red cells are the ruler only where they measure at least this share of what the white
# cells imply. Around a white cell cropped tight, the only "red cells" are slivers cut by the
# crop's edge and read far too small (Bio-Net train's tight crops: 0.41 of their field's scale
# at the median, for the third read so): the white cell is the ruler there. Not higher: PBC's
# monocytes and immature granulocytes, 15-20 µm across, imply red cells 0.6 of the true size.
# Where this many red cells lie whole in the image it is a field, whatever the white cells
# read: in a dense field, the pale level joins the white cell to its neighbours and the
# background between them (a Bio-Net val field read 216 px against 67). Tight crops hold 0-9
# whole objects (specks included), fields at least 4, most over 20.
# Chosen on Bio-Net train crops and fields and 500 PBC val crops (BENCHMARKS.md).
MIN_RED_OVER_WHITE = 0.5
WHOLE_RED_CELLS_FOR_A_FIELD = 8
# The white cells' pale cytoplasm is measured only in a close-up, where the nucleated objects'
# half width is at least this share of the image's shorter side (Bio-Net train: tight crops
# 0.10 at the 1st percentile, fields 0.09 at the 95th): in a field, the pale level also takes
# in the tinted background between crowded cells and joins them into one object.
CLOSE_UP_NUCLEATED_SHARE = 0.10


def _ruler(rgb: np.ndarray) -> tuple[float, str, float | None] | None:
    """The typical red-cell diameter in ``rgb``'s pixels, what it was read from (the red
    cells, or the white cells at their typical size where red cells are too few or are only
    the slivers a tight crop cuts), and the red cells' own reading."""
    cells = cell_masks(rgb)
    red_width = half_width(cells.red)
    red = None if red_width is None else red_width * HALF_WIDTH_TO_DIAMETER
    if red is not None and cells.enough_red and cells.whole_red >= WHOLE_RED_CELLS_FOR_A_FIELD:
        # A field: its red cells are the ruler whatever the white cells read (below), so
        # theirs are not measured.
        return red, "red cells", red
    white_width = half_width(cells.nucleated)
    if white_width is not None and white_width >= CLOSE_UP_NUCLEATED_SHARE * min(rgb.shape[:2]) \
            and not np.array_equal(cells.white, cells.nucleated):
        white_width = half_width(cells.white) or white_width
    white = (None if white_width is None
             else white_width * HALF_WIDTH_TO_DIAMETER * RED_CELL_UM / TYPICAL_WHITE_CELL_UM)
    plausible = white is None or (red is not None and (
        red >= MIN_RED_OVER_WHITE * white or cells.whole_red >= WHOLE_RED_CELLS_FOR_A_FIELD))
    if red is not None and cells.enough_red and plausible:
        return red, "red cells", red
    if white is not None:
        return white, "white cells", red
    return None if red is None else (red, "red cells", red)


def measure_scale(image: Image.Image, default_red_cell_px: float,
                  first: Reduced | None = None) -> Scale:
    """The image's scale from its red cells (its white cells where red cells are too few);
    ``default_red_cell_px`` when there is nothing to measure."""
    rgb, factor = first or reduced(image, FIRST_SIDE)
    reading = _ruler(rgb)
    if reading is not None and reading[0] < MIN_CELL_PX and factor < 1:
        # Small cells in a large photo: look again at a resolution that resolves them.
        side = min(MAX_SIDE, round(FIRST_SIDE * GOOD_CELL_PX / reading[0]))
        rgb, factor = reduced(image, side)
        reading = _ruler(rgb) or reading
    if reading is None:
        return Scale(default_red_cell_px, measured=False)
    value, ruler, red = reading
    return Scale(value / factor, measured=True, ruler=ruler,
                 red_cells_px=None if red is None or ruler == "red cells" else red / factor)
