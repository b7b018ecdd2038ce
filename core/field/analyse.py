"""One photo in, one analysis out: close-up or field, quality, cells, differential, timings."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from core.field.detect import (
    Detection,
    DetectorParams,
    RedCellFinder,
    field_masks,
    find_cells,
    working_image,
)
from core.field.learned_red_cells import LearnedRedCells
from core.field.quality import Quality, QualityThresholds, measure
from core.model.classifier import NOT_RECOGNISED, Box, CellClassifier, LabelScore

# Single-cell crops (CellaVision-like, as in PBC) are a few hundred pixels; phone photos of a
# field are megapixels. Anything this small is classified as one cell.
CLOSE_UP_MAX_SIDE = 600
# In PBC crops the image side is about 2.1 times the white cell's box: crop fields alike.
CROP_FACTOR = 2.1
REVIEW_BELOW = 0.70
# The usual order of a white-cell differential; erythroblasts (NRBC) are reported beside it.
CLINICAL_ORDER = ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil", "ig",
                  "erythroblast", "platelet")
# Cells that carry a label: white cells in a field, the cell of a close-up.
CLASSIFIED_KINDS = ("wbc", "cell")
# What counted the red cells when no trained network was configured.
COLOUR_RULE = "colour-rule"


def in_clinical_order(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Counts in the usual clinical reading order, anything unexpected after."""
    order = [label for label in CLINICAL_ORDER if label in counts]
    order += sorted(set(counts) - set(order))
    return [(label, counts[label]) for label in order]


@dataclass(frozen=True)
class Cell:
    kind: str  # "cell" (a close-up), "wbc", "rbc" or "platelet"
    box: Box  # pixels of the original image
    at_border: bool = False
    label: str | None = None
    confidence: float | None = None
    top3: tuple[LabelScore, ...] = ()
    review: bool = False
    out_of_domain: bool = False  # unlike the training images: the label is less reliable

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "box": list(self.box), "at_border": self.at_border,
                "label": self.label,
                "confidence": None if self.confidence is None else round(self.confidence, 6),
                "top3": [{"label": s.label, "confidence": round(s.confidence, 6)}
                         for s in self.top3],
                "review": self.review, "out_of_domain": self.out_of_domain}


@dataclass(frozen=True)
class DifferentialRow:
    label: str
    count: int
    percent: float


@dataclass(frozen=True)
class Analysis:
    mode: str  # "cell" or "field"
    width: int
    height: int
    cells: list[Cell]
    differential: list[DifferentialRow]
    rbc_count: int
    platelet_count: int
    quality: Quality | None
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    # What found the red cells of a field (a network's version, or the colour rule); a result
    # must say which models made it, and the count depends on this one.
    red_cell_model: str | None = None

    @property
    def rejected(self) -> bool:
        return self.quality is not None and not self.quality.passed

    @property
    def classified(self) -> list[Cell]:
        return [c for c in self.cells if c.label is not None]

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode, "width": self.width, "height": self.height,
            "model": self.model, "red_cell_model": self.red_cell_model,
            "quality": self.quality.to_dict() if self.quality else None,
            "cells": [c.to_dict() for c in self.cells],
            "differential": [asdict(row) for row in self.differential],
            "wbc_count": sum(1 for c in self.cells if c.kind == "wbc"),
            "rbc_count": self.rbc_count,
            "platelet_count": self.platelet_count,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
        }


def differential(cells: list[Cell]) -> list[DifferentialRow]:
    labels = [c.label for c in cells
              if c.kind in CLASSIFIED_KINDS and c.label and c.label != NOT_RECOGNISED]
    counts = {label: labels.count(label) for label in set(labels)}
    return [DifferentialRow(label, count, round(100 * count / len(labels), 1))
            for label, count in in_clinical_order(counts)]


def centred_crop(image: Image.Image, box: Box, background: tuple[int, int, int]) -> Image.Image:
    """A square around the cell, as wide as PBC's framing, padded with the field's background."""
    x0, y0, x1, y1 = box
    side = round(max(x1 - x0, y1 - y0) * CROP_FACTOR)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left, top = cx - side // 2, cy - side // 2
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(image.crop((max(0, left), max(0, top), min(image.width, left + side),
                             min(image.height, top + side))), (max(0, -left), max(0, -top)))
    return canvas


def _to_original(box: Box, scale: float, size: tuple[int, int]) -> Box:
    x0, y0, x1, y1 = box
    return (max(0, round(x0 / scale)), max(0, round(y0 / scale)),
            min(size[0], round(x1 / scale)), min(size[1], round(y1 / scale)))


def _labelled(kind: str, box: Box, at_border: bool, prediction_label: str, confidence: float,
              top3: tuple[LabelScore, ...], out_of_domain: bool = False) -> Cell:
    review = (at_border or out_of_domain or confidence < REVIEW_BELOW
              or prediction_label == NOT_RECOGNISED)
    return Cell(kind, box, at_border, prediction_label, confidence, top3, review, out_of_domain)


def analyse(image: Image.Image, classifier: CellClassifier,
            params: DetectorParams | None = None,
            thresholds: QualityThresholds | None = None,
            red_cells: RedCellFinder | None = None) -> Analysis:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    image = image.convert("RGB")
    if max(image.size) <= CLOSE_UP_MAX_SIDE:
        [prediction] = classifier.classify_image(image)
        timings["classify"] = time.perf_counter() - started
        cell = _labelled("cell", prediction.box, False, prediction.label, prediction.confidence,
                         prediction.top3)
        return Analysis("cell", image.width, image.height, [cell], differential([cell]), 0, 0,
                        None, classifier.version, timings)

    params = params or DetectorParams()
    work, scale = working_image(image)
    rgb = np.asarray(work, dtype=np.float32)
    masks = field_masks(rgb, params)
    quality = measure(masks, thresholds)
    timings["quality"] = time.perf_counter() - started
    if not quality.passed:
        return Analysis("field", image.width, image.height, [], [], 0, 0, quality,
                        classifier.version, timings)

    mark = time.perf_counter()
    white, platelets, red = find_cells(masks, params, red_cells)
    timings["detect"] = time.perf_counter() - mark

    mark = time.perf_counter()
    background = tuple(int(v) for v in masks.background.clip(0, 255))
    boxes = [_to_original(d.box, scale, image.size) for d in white]
    crops = [centred_crop(image, box, background) for box in boxes]  # type: ignore[arg-type]
    # One batch for the whole photo. Detection has already established that these are white
    # cells, so a cell unlike the training images keeps its label and is flagged for review
    # (out of domain: another microscope, camera or stain) instead of "not recognised".
    predictions = classifier.classify_crops(crops, boxes, reject_outliers=False)
    timings["classify"] = time.perf_counter() - mark

    cells = [_labelled("wbc", box, d.at_border, p.label, p.confidence, p.top3,
                       out_of_domain=classifier.is_outlier(p.ood_score))
             for d, box, p in zip(white, boxes, predictions, strict=True)]
    cells += [_plain(d, scale, image.size) for d in platelets + red]
    timings["total"] = time.perf_counter() - started
    return Analysis("field", image.width, image.height, cells, differential(cells),
                    rbc_count=len(red), platelet_count=len(platelets), quality=quality,
                    model=classifier.version, timings=timings,
                    red_cell_model=red_cell_model_of(red_cells))


def red_cell_model_of(red_cells: RedCellFinder | None) -> str:
    return red_cells.version if isinstance(red_cells, LearnedRedCells) else COLOUR_RULE


def _plain(detection: Detection, scale: float, size: tuple[int, int]) -> Cell:
    return Cell(detection.kind, _to_original(detection.box, scale, size), detection.at_border)
