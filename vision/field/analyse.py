"""One photo in, one analysis out: scale, quality, cells, differential, timings.

Every image takes the same path, whatever its size: its scale is measured from its red cells,
it is resampled to the working scale, judged by the quality gate, its cells are found, and each
white cell is cropped centred on itself at PBC's physical framing and classified. Whether it is
reported as a close-up of one cell or as a field depends on what it shows, not on its pixels.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from vision.field.detect import (
    WORK_RED_CELL_PX,
    Detection,
    DetectorParams,
    FieldMasks,
    RedCellFinder,
    box_centre,
    colour_rule,
    detect_platelets,
    detect_white_cells,
    working_masks,
)
from vision.field.exposure import restored
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


@dataclass(frozen=True)
class Framed:
    """A photo read up to its classification: the crops the classifier is to see (one for a
    close-up, one per white cell of a field) and what the result needs beside their labels."""

    image: Image.Image
    scale: Scale
    quality: Quality
    mode: str
    boxes: list[Box]
    crops: list[Image.Image]
    white: list[Detection]
    red: list[Detection]
    # Whether a white cell, platelet or red cell is anywhere: asked only where the classifier
    # recognises nothing, since a close-up's answer may take the red-cell network (about as
    # long as classifying; 5 of 40 PBC close-ups asked it before any cell was named).
    blood_seen: Callable[[], bool]
    factor: float
    red_cell_model: str
    timings: dict[str, float]


def analyse(image: Image.Image, classifier: CellClassifier,
            params: DetectorParams | None = None,
            thresholds: QualityThresholds | None = None,
            red_cells: RedCellFinder | None = None) -> Analysis:
    return analyse_many([image], classifier, params, thresholds, red_cells)[0]


def analyse_many(images: Sequence[Image.Image], classifier: CellClassifier,
                 params: DetectorParams | None = None,
                 thresholds: QualityThresholds | None = None,
                 red_cells: RedCellFinder | None = None, threads: int = 1) -> list[Analysis]:
    """Each photo through the path, the cells of all of them classified together (in the
    classifier's chunks, where a CPU classifies a cell fastest); the photos framed in
    ``threads`` threads (numpy and PIL let go of the interpreter: two threads framed 32 PBC
    close-ups 1.7-1.8 x as fast as one on two cores)."""
    params = params or DetectorParams()
    thresholds = thresholds or QualityThresholds()

    def framed_one(image: Image.Image) -> Framed | Analysis:
        return frame(image, classifier.version, params, thresholds, red_cells)

    if threads > 1 and len(images) > 1:
        with ThreadPoolExecutor(min(threads, len(images))) as pool:
            framed = list(pool.map(framed_one, images))
    else:
        framed = [framed_one(image) for image in images]
    pending = [f for f in framed if isinstance(f, Framed)]
    mark = time.perf_counter()
    probs, ood = classifier.scores([crop for f in pending for crop in f.crops])
    per_cell = (time.perf_counter() - mark) / max(1, sum(len(f.crops) for f in pending))
    analyses, start = [], 0
    for item in framed:
        if isinstance(item, Analysis):
            analyses.append(item)
            continue
        end = start + len(item.crops)
        analyses.append(_classified(item, classifier, probs[start:end],
                                    None if ood is None else ood[start:end],
                                    per_cell * len(item.crops)))
        start = end
    return analyses


def frame(image: Image.Image, model: str, params: DetectorParams,
          thresholds: QualityThresholds, red_cells: RedCellFinder | None = None,
          ) -> Framed | Analysis:
    """``image`` read up to its classification: scale, quality gate, cells found and framed;
    or, where the gate refuses it, the refused analysis."""
    started = time.perf_counter()
    # Each stage's own seconds (their sum, the classification's share included, is "total").
    timings: dict[str, float] = {}
    image, scale = _read(rgb(image))
    masks, factor = working_masks(image, scale.red_cell_px, params)
    # Too large for a close-up whatever white cells it holds, a photo is a field whose red cells
    # are the network's: it reads only these masks, so it runs beside the gate and the white
    # cells' detection (a 12 MP field's costliest step). Used only if the masks stand.
    ahead = None
    if isinstance(red_cells, LearnedRedCells) and max(image.size) > max(
            CLOSE_UP_FRAMES, CENTRED_CELL_FRAMES) * frame_side(scale):
        ahead = masks, red_cells.outputs_ahead(masks)
    mark = _lap(timings, "scale", started)
    quality = measure(masks, thresholds, upsampled=factor)
    mark = _lap(timings, "quality", mark)
    if not quality.passed:
        return _refused(image, scale, quality, model, timings)

    white = detect_white_cells(masks, params)
    if (rescaled := _rescaled(image, scale, white, params)) is not None:
        # The gate judges the photo again at the white cells' scale, and the cells are found
        # there.
        scale, masks, factor = rescaled
        quality = measure(masks, thresholds, upsampled=factor)
        if not quality.passed:
            return _refused(image, scale, quality, model, timings)
        white = detect_white_cells(masks, params)
    red_focus = _focus_at_red_cells(image, scale, params)
    if red_focus is not None and red_focus < thresholds.min_focus_at_red_cells:
        return _refused(image, scale, refused_after_all(quality, "blurred", red_focus),
                        model, timings)
    side = frame_side(scale)
    platelets = detect_platelets(masks, white, params)
    close_up = (_close_up_sized(image, side) and len(white) <= 1) or (
        not white and max(image.size) <= CENTRED_CELL_FRAMES * side)
    # A close-up's red cells are the few its edges cut, counted but never shown: the colour
    # rule counts them in a few milliseconds, where the network costs about as much as
    # classifying the cell.
    red_finder = colour_rule(params) if close_up else red_cells or colour_rule(params)
    if ahead is not None and ahead[0] is masks and isinstance(red_finder, LearnedRedCells):
        red = red_finder.cells(masks, white, ahead[1].result(), red_finder.threshold)
    else:
        red = red_finder(masks, white)

    def blood_seen() -> bool:
        if white or platelets:
            return True
        if close_up and red_cells is not None:
            # Whether a close-up holding no white cell or platelet shows any blood cell is the
            # network's call: a fundus photograph's vessels pass the colour rule.
            return bool(red_cells(masks, white))
        return bool(red)

    mark = _lap(timings, "detect", mark)
    if close_up:
        box, crop = _close_up_framing(image, side, masks, white, factor)
        mode, boxes, crops = "cell", [box], [crop]
    else:
        boxes = [_to_original(d.box, factor, image.size) for d in white]
        crops = [cell_crop(image, box_centre(box), side, masks, factor) for box in boxes]
        mode = "field"
    _lap(timings, "frame", mark)
    return Framed(image, scale, quality, mode, boxes, crops, white, red, blood_seen, factor,
                  red_cell_model_of(red_finder), timings)


def _classified(framed: Framed, classifier: CellClassifier, probs: torch.Tensor,
                ood: torch.Tensor | None, seconds: float) -> Analysis:
    """The analysis of a framed photo, given its crops' scores."""
    if framed.mode == "cell":
        # A detected white cell unlike the training images keeps its label and is flagged for
        # review, as in a field; only what detection did not find a white cell in may be "not
        # recognised" (a photo of something else).
        found = bool(framed.white)
        [prediction] = classifier.predictions(probs, ood, framed.boxes, reject_outliers=not found)
        cells = [_labelled("cell", framed.boxes[0], False, prediction, classifier,
                           out_of_domain=found and classifier.is_outlier(prediction.ood_score))]
        if prediction.label == NOT_RECOGNISED and not framed.blood_seen():
            # No red cell, white cell or platelet anywhere, and what the photo centres is no
            # blood cell either (the rejection step): a photo of something else (a fundus
            # photograph passes the gate), told so rather than shown as a cell not recognised.
            # Cells of a laboratory whose stain detection cannot read, which its adapted model
            # names, stay.
            return _refused(framed.image, framed.scale,
                            refused_after_all(framed.quality, "not_a_smear"), classifier.version,
                            framed.timings)
    else:
        # Detection has already established that these are white cells, so a cell unlike the
        # training images keeps its label and is flagged for review (out of domain: another
        # microscope, camera or stain), not "not recognised".
        predictions = classifier.predictions(probs, ood, framed.boxes, reject_outliers=False)
        cells = [_labelled("wbc", box, d.at_border, p, classifier,
                           out_of_domain=classifier.is_outlier(p.ood_score))
                 for d, box, p in zip(framed.white, framed.boxes, predictions, strict=True)]
        # A close-up is one cell: its neighbours are counted, but only a field lists them.
        cells += [_plain(d, framed.factor, framed.image.size) for d in framed.red]
    timings = {**framed.timings, "classify": seconds}
    # In a batch, the photo's own stages and its cells' share of the pass.
    timings["total"] = sum(framed.timings.values()) + seconds
    return Analysis(framed.mode, framed.image.width, framed.image.height, cells,
                    differential(cells), rbc_count=len(framed.red), platelet_count=None,
                    quality=framed.quality, model=classifier.version, timings=timings,
                    red_cell_model=framed.red_cell_model, scale=framed.scale,
                    screen_model=classifier.screen.version if classifier.screen else None)


def _read(image: Image.Image) -> tuple[Image.Image, Scale]:
    """The photo as the path reads it (``restored`` where it is washed out) and its scale."""
    image, first = restored(image)
    return image, image_scale(image, first)


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
             ) -> tuple[Image.Image, Scale, FieldMasks, float, list[Detection]]:
    """The image as ``analyse`` reads it (``restored``) and its scale as ``analyse`` settles it
    (the red cells' reading, checked by the white cells), with the working masks, their factor
    and the white cells at that scale; no quality gate."""
    image, scale = _read(image)
    masks, factor = working_masks(image, scale.red_cell_px, params)
    white = detect_white_cells(masks, params)
    if (rescaled := _rescaled(image, scale, white, params)) is not None:
        scale, masks, factor = rescaled
        white = detect_white_cells(masks, params)
    return image, scale, masks, factor, white


def settled_scale(image: Image.Image, params: DetectorParams | None = None) -> Scale:
    """The scale ``analyse`` frames ``image``'s cells by (no quality gate): what a benchmark
    holds against a field's red-cell boxes."""
    return _settled(rgb(image), params or DetectorParams())[1]


def framed_cell(image: Image.Image, centre: tuple[float, float] | None = None,
                params: DetectorParams | None = None) -> Image.Image:
    """A cell of ``image`` framed as ``analyse`` frames it for the classifier (no quality gate):
    the field's cell at ``centre``, or, without one, the cell an image of one cell shows (with
    several white cells, the one nearest the centre, as in a field).

    A laboratory's labelled cells come cropped its own way, tight or wide, and an expert's
    corrected cell must be learnt as it was shown: the classifier meets a laboratory's cells
    through ``analyse``, so this is how an adaptation or a retraining should see them.
    """
    image, scale, masks, factor, white = _settled(rgb(image), params or DetectorParams())
    side = frame_side(scale)
    if centre is None and len(white) > 1:
        cx, cy = image.width / 2, image.height / 2
        boxes = [_to_original(d.box, factor, image.size) for d in white]
        centre = min((box_centre(b) for b in boxes),
                     key=lambda c: abs(c[0] - cx) + abs(c[1] - cy))
    if centre is not None:
        return cell_crop(image, centre, side, masks, factor)
    return _close_up_framing(image, side, masks, white, factor)[1]


def red_cell_model_of(red_cells: RedCellFinder | None) -> str:
    return red_cells.version if isinstance(red_cells, LearnedRedCells) else COLOUR_RULE


def _plain(detection: Detection, scale: float, size: tuple[int, int]) -> Cell:
    return Cell(detection.kind, _to_original(detection.box, scale, size), detection.at_border)
