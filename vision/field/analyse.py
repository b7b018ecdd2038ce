"""One photo in, one analysis out: scale, quality, cells, differential, timings.

Every image takes the same path, whatever its size: its scale is measured from its red cells,
it is resampled to the working scale, judged by the quality gate, its cells are found, and each
white cell is cropped centred on itself at PBC's physical framing and classified. Whether it is
reported as a close-up of one cell or as a field depends on what it shows, not on its pixels.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from PIL import Image

from vision.field.detect import (
    WORK_RED_CELL_PX,
    Detection,
    DetectorParams,
    FieldMasks,
    RedCellFinder,
    box_centre,
    detect_white_cells,
    find_cells,
    working_masks,
)
from vision.field.learned_red_cells import LearnedRedCells
from vision.field.quality import (
    Quality,
    QualityThresholds,
    focus_of,
    measure,
    refused_after_all,
)
from vision.field.results import (
    Analysis,
    Cell,
)
from vision.field.scale import RED_CELL_UM, TYPICAL_WHITE_CELL_UM, Scale, image_scale
from vision.findings import differential
from vision.labels import NOT_RECOGNISED
from vision.model.classifier import Box, CellClassifier, CellPrediction
from vision.pixels import rgb

# The side of a PBC image in micrometres (its red cells measure 56 px in our 256 px copies, by
# ``vision.field.scale``): every white cell is cropped to this framing, the one the classifier
# was trained on.
PBC_FRAME_UM = 34.3
# An image no more than this many frames across, holding at most one white cell, is a close-up;
# up to the second size, one where no white cell is found is too (a platelet, an erythroblast).
CLOSE_UP_FRAMES = 1.5
CENTRED_CELL_FRAMES = 2.0
# A close-up already framed as PBC frames its cells (its white cell within the first share of a
# frame from the centre, its longer side within the second share of the frame) is classified
# as the photographer framed it: centring it again only shifts it and pads an edge. The size's
# share is the error band of a crop's own scale reading (chosen on PBC val and Bio-Net val).
FRAMED_LIKE_PBC_CENTRE = 0.15
FRAMED_LIKE_PBC_SIZE = 0.25
# Below this calibrated confidence a cell is flagged for review: a round value set when the path
# was first built, not fitted to any set.
REVIEW_BELOW = 0.70
# What counted the red cells when no trained network was configured.
COLOUR_RULE = "colour-rule"
# White cells measure 6-26 µm across: their detected boxes on PBC train (under PBC's true
# scale) and Bio-Net train's white-cell boxes (under the measured scale) span 6.5-24 and 8-17 µm
# from the 1st to the 99th percentile. A red-cell reading that puts an image's white cells
# outside that is wrong (a close-up's few, cut red cells; a clump read as one cell): the white
# cells are the ruler then, at their typical size.
WHITE_CELL_UM = (6.0, 26.0)


def frame_side(scale: Scale) -> int:
    """PBC's framing in pixels of an image at ``scale``."""
    return max(8, round(PBC_FRAME_UM * scale.px_per_um))


def centred_crop(image: Image.Image, centre: tuple[float, float], side: int,
                 background: tuple[int, int, int]) -> Image.Image:
    """A square of ``side`` centred on the cell, padded with the field's background."""
    left, top = round(centre[0] - side / 2), round(centre[1] - side / 2)
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(image.crop((max(0, left), max(0, top), min(image.width, left + side),
                             min(image.height, top + side))), (max(0, -left), max(0, -top)))
    return canvas


def in_view(image: Image.Image, origin: tuple[int, int], masks: FieldMasks,
            factor: float) -> Image.Image:
    """``image`` (a crop whose top left is at ``origin`` in the photo's pixels) with whatever lies
    outside the photo's field of view (an eyepiece's surround, a shifted crop's black bands)
    painted the field's background, as the edges of a crop are: the classifier never saw black.
    ``masks`` are the photo's at the working scale, ``factor`` times its pixels."""
    if masks.valid.all():
        return image
    view = Image.fromarray(masks.valid.astype(np.uint8) * 255)
    x0, y0 = origin
    region = (round(x0 * factor), round(y0 * factor),
              max(round(x0 * factor) + 1, round((x0 + image.width) * factor)),
              max(round(y0 * factor) + 1, round((y0 + image.height) * factor)))
    inside = view.crop(region).resize(image.size, Image.Resampling.NEAREST)
    return Image.composite(image, Image.new("RGB", image.size, masks.background_rgb), inside)


def cell_crop(image: Image.Image, centre: tuple[float, float], side: int, masks: FieldMasks,
              factor: float) -> Image.Image:
    """The cell centred at PBC's framing (``centred_crop``), its surround painted background."""
    crop = centred_crop(image, centre, side, masks.background_rgb)
    origin = (round(centre[0] - side / 2), round(centre[1] - side / 2))
    return in_view(crop, origin, masks, factor)


def white_cell_um(white: list[Detection]) -> float | None:
    """The median diameter of the wholly visible white cells, in µm at the working scale."""
    sides = [((d.box[2] - d.box[0]) + (d.box[3] - d.box[1])) / 2
             for d in white if not d.at_border]
    return statistics.median(sides) * RED_CELL_UM / WORK_RED_CELL_PX if sides else None


def checked_by_white_cells(scale: Scale, white: list[Detection]) -> Scale | None:
    """A better scale where the white cells say the red cells' reading is wrong; else None."""
    size = white_cell_um(white)
    if size is None or WHITE_CELL_UM[0] <= size <= WHITE_CELL_UM[1]:
        return None
    return Scale(scale.red_cell_px * size / TYPICAL_WHITE_CELL_UM, measured=True,
                 ruler="white cells", red_cells_px=scale.red_cells_px
                 if scale.ruler == "white cells" else scale.red_cell_px)


def _to_original(box: Box, scale: float, size: tuple[int, int]) -> Box:
    x0, y0, x1, y1 = box
    return (max(0, round(x0 / scale)), max(0, round(y0 / scale)),
            min(size[0], round(x1 / scale)), min(size[1], round(y1 / scale)))


def crop_cell(prediction: CellPrediction, classifier: CellClassifier) -> Cell:
    """A white cell already cut out (a laboratory's reviewed crop), flagged as the path flags a
    detected one (``prediction`` made without rejection: unlike the training cells, it is
    flagged "unusual", not "not recognised")."""
    return _labelled("cell", prediction.box, False, prediction, classifier,
                     out_of_domain=classifier.is_outlier(prediction.ood_score))


def _labelled(kind: str, box: Box, at_border: bool, prediction: CellPrediction,
              classifier: CellClassifier, out_of_domain: bool = False) -> Cell:
    reasons = [reason for reason, applies in (
        ("possible_blast", classifier.possible_blast(prediction)),
        ("not_recognised", prediction.label == NOT_RECOGNISED),
        ("unusual", out_of_domain),
        ("unsure", prediction.label != NOT_RECOGNISED and prediction.confidence < REVIEW_BELOW),
        ("cut_by_edge", at_border),
    ) if applies]
    return Cell(kind, box, at_border, prediction.label, prediction.confidence, prediction.top3,
                bool(reasons), out_of_domain, tuple(reasons), prediction.blast_probability)


def analyse(image: Image.Image, classifier: CellClassifier,
            params: DetectorParams | None = None,
            thresholds: QualityThresholds | None = None,
            red_cells: RedCellFinder | None = None) -> Analysis:
    started = time.perf_counter()
    # Each stage's own seconds; "total" is the whole call.
    timings: dict[str, float] = {}
    image = rgb(image)
    params = params or DetectorParams()
    thresholds = thresholds or QualityThresholds()
    scale = image_scale(image)
    masks, factor = working_masks(image, scale.red_cell_px, params)
    mark = _lap(timings, "scale", started)
    quality = measure(masks, thresholds, upsampled=factor)
    mark = _lap(timings, "quality", mark)
    if not quality.passed:
        return _refused(image, scale, quality, classifier.version, timings)

    white, platelets, red = find_cells(masks, params, red_cells)
    if (rescaled := _rescaled(image, scale, white, params)) is not None:
        # The gate judges the photo again at the white cells' scale, and the cells are found
        # there.
        scale, masks, factor = rescaled
        quality = measure(masks, thresholds, upsampled=factor)
        if not quality.passed:
            return _refused(image, scale, quality, classifier.version, timings)
        white, platelets, red = find_cells(masks, params, red_cells)
    red_focus = _focus_at_red_cells(image, scale, params)
    if red_focus is not None and red_focus < thresholds.min_focus_at_red_cells:
        return _refused(image, scale, refused_after_all(quality, "blurred", red_focus),
                        classifier.version, timings)
    mark = _lap(timings, "detect", mark)
    side = frame_side(scale)
    close_up_sized = _close_up_sized(image, side)

    if (close_up_sized and len(white) <= 1) or (
            not white and max(image.size) <= CENTRED_CELL_FRAMES * side):
        mode = "cell"
        cells = [_close_up(image, classifier, side, masks, white, factor)]
    else:
        mode = "field"
        boxes = [_to_original(d.box, factor, image.size) for d in white]
        crops = [cell_crop(image, box_centre(box), side, masks, factor) for box in boxes]
        # One batch for the whole photo. Detection has already established that these are
        # white cells, so a cell unlike the training images keeps its label and is flagged for
        # review (out of domain: another microscope, camera or stain), not "not recognised".
        predictions = classifier.classify_crops(crops, boxes, reject_outliers=False)
        cells = [_labelled("wbc", box, d.at_border, p, classifier,
                           out_of_domain=classifier.is_outlier(p.ood_score))
                 for d, box, p in zip(white, boxes, predictions, strict=True)]
        # A close-up is one cell: its neighbours are counted, but only a field lists them.
        cells += [_plain(d, factor, image.size) for d in red]
    if mode == "cell" and not (white or platelets or red) and cells[0].label == NOT_RECOGNISED:
        # No red cell, white cell or platelet anywhere, and what the photo centres is no blood
        # cell either (the rejection step): a photo of something else (a fundus photograph
        # passes the gate), told so rather than shown as a cell not recognised. Cells of a
        # laboratory whose stain detection cannot read, which its adapted model names, stay.
        return _refused(image, scale, refused_after_all(quality, "not_a_smear"),
                        classifier.version, timings)
    _lap(timings, "classify", mark)
    timings["total"] = time.perf_counter() - started
    return Analysis(mode, image.width, image.height, cells, differential(cells),
                    rbc_count=len(red), platelet_count=None, quality=quality,
                    model=classifier.version, timings=timings,
                    red_cell_model=red_cell_model_of(red_cells), scale=scale)


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    """Records ``stage``'s seconds since ``since``; returns now, where the next stage starts."""
    now = time.perf_counter()
    timings[stage] = now - since
    return now


def _rescaled(image: Image.Image, scale: Scale, white: list[Detection],
              params: DetectorParams) -> tuple[Scale, FieldMasks, float] | None:
    """The scale and working masks (with their factor) again, with the white cells as the ruler,
    where they say the red cells' reading is wrong; None where that reading stands."""
    better = checked_by_white_cells(scale, white)
    if better is None:
        return None
    masks, factor = working_masks(image, better.red_cell_px, params)
    return better, masks, factor


def _focus_at_red_cells(image: Image.Image, scale: Scale, params: DetectorParams,
                        ) -> float | None:
    """Where the white cells set the scale, the photo's focus at the scale the red cells read
    (None elsewhere). Blur swells a white cell's pale rim and merges the red cells around it, so a
    blurred field passes for a close-up, is shrunk to the white cell's typical size and looks
    sharp there (a Bio-Net train field blurred by 3 px: the white cell read at 262 px against
    54); a real close-up's red cells are slivers cut by its edges, and their reading only
    enlarges it, to be judged at its own resolution."""
    red_px = scale.red_cells_px
    if scale.ruler != "white cells" or red_px is None or red_px >= scale.red_cell_px:
        return None
    masks, factor = working_masks(image, red_px, params)
    return focus_of(masks, upsampled=factor)


def _close_up_sized(image: Image.Image, side: int) -> bool:
    return max(image.size) <= CLOSE_UP_FRAMES * side


def _refused(image: Image.Image, scale: Scale, quality: Quality, model: str,
             timings: dict[str, float]) -> Analysis:
    """The gate refused the photo: no cells, only why (and its scale)."""
    mode = "cell" if _close_up_sized(image, frame_side(scale)) else "field"
    return Analysis(mode, image.width, image.height, [], [], 0, 0, quality, model, timings,
                    scale=scale)


def framed_like_pbc(size: tuple[int, int], centre: tuple[float, float], side: int) -> bool:
    """Whether an image of ``size`` with its white cell at ``centre`` is framed as PBC frames
    cells (``side`` px a frame at its scale)."""
    near = FRAMED_LIKE_PBC_CENTRE * side
    return (abs(side - max(size)) <= FRAMED_LIKE_PBC_SIZE * max(size)
            and abs(centre[0] - size[0] / 2) <= near and abs(centre[1] - size[1] / 2) <= near)


def _close_up_framing(image: Image.Image, side: int, masks: FieldMasks,
                      white: list[Detection], factor: float) -> tuple[Box, Image.Image]:
    """A close-up's cell (its box in the photo, and the crop the classifier sees): its white
    cell, framed as PBC frames it, or else whatever the photographer centred."""
    if white:
        box = _to_original(white[0].box, factor, image.size)
        centre = box_centre(box)
    else:
        box, centre = (0, 0, image.width, image.height), (image.width / 2, image.height / 2)
    crop = in_view(image, (0, 0), masks, factor) \
        if white and framed_like_pbc(image.size, centre, side) \
        else cell_crop(image, centre, side, masks, factor)
    return box, crop


def _settled(image: Image.Image, params: DetectorParams,
             ) -> tuple[Scale, FieldMasks, float, list[Detection]]:
    """The scale as ``analyse`` settles it (the red cells' reading, checked by the white cells),
    with the working masks, their factor and the white cells at that scale; no quality gate."""
    scale = image_scale(image)
    masks, factor = working_masks(image, scale.red_cell_px, params)
    white = detect_white_cells(masks, params)
    if (rescaled := _rescaled(image, scale, white, params)) is not None:
        scale, masks, factor = rescaled
        white = detect_white_cells(masks, params)
    return scale, masks, factor, white


def settled_scale(image: Image.Image, params: DetectorParams | None = None) -> Scale:
    """The scale ``analyse`` frames ``image``'s cells by (no quality gate): what a benchmark
    holds against a field's red-cell boxes."""
    return _settled(rgb(image), params or DetectorParams())[0]


def framed_cell(image: Image.Image, centre: tuple[float, float] | None = None,
                params: DetectorParams | None = None) -> Image.Image:
    """A cell of ``image`` framed as ``analyse`` frames it for the classifier (no quality gate):
    the field's cell at ``centre``, or, without one, the cell an image of one cell shows (with
    several white cells, the one nearest the centre, as in a field).

    A laboratory's labelled cells come cropped its own way, tight or wide, and an expert's
    corrected cell must be learnt as it was shown: the classifier meets a laboratory's cells
    through ``analyse``, so this is how an adaptation or a retraining should see them.
    """
    image = rgb(image)
    scale, masks, factor, white = _settled(image, params or DetectorParams())
    side = frame_side(scale)
    if centre is None and len(white) > 1:
        cx, cy = image.width / 2, image.height / 2
        boxes = [_to_original(d.box, factor, image.size) for d in white]
        centre = min((box_centre(b) for b in boxes),
                     key=lambda c: abs(c[0] - cx) + abs(c[1] - cy))
    if centre is not None:
        return cell_crop(image, centre, side, masks, factor)
    return _close_up_framing(image, side, masks, white, factor)[1]


def _close_up(image: Image.Image, classifier: CellClassifier, side: int, masks: FieldMasks,
              white: list[Detection], factor: float) -> Cell:
    """The one cell of a close-up: its white cell, framed as PBC frames it, or else whatever the
    photographer centred (a platelet, a red cell), and "not recognised" if it is no cell."""
    box, crop = _close_up_framing(image, side, masks, white, factor)
    # As in a field: a detected white cell unlike the training images keeps its label and is
    # flagged for review; only what detection did not find a white cell in may be "not
    # recognised" (a photo of something else).
    [prediction] = classifier.classify_crops([crop], [box], reject_outliers=not white)
    return _labelled("cell", box, False, prediction, classifier,
                     out_of_domain=bool(white) and classifier.is_outlier(prediction.ood_score))


def red_cell_model_of(red_cells: RedCellFinder | None) -> str:
    return red_cells.version if isinstance(red_cells, LearnedRedCells) else COLOUR_RULE


def _plain(detection: Detection, scale: float, size: tuple[int, int]) -> Cell:
    return Cell(detection.kind, _to_original(detection.box, scale, size), detection.at_border)
