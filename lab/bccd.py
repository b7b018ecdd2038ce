"""The BCCD data set (Pascal VOC boxes) and box matching, for development and benchmarks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.field.detect import contains

KINDS = {"WBC": "wbc", "RBC": "rbc", "Platelets": "platelet"}


@dataclass(frozen=True)
class Annotated:
    image: Path
    boxes: dict[str, list[tuple[int, int, int, int]]]  # kind -> boxes


def read_split(root: Path, split: str) -> list[Annotated]:
    names = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
    return [read_one(root, name) for name in names]


def read_one(root: Path, name: str) -> Annotated:
    return Annotated(root / "JPEGImages" / f"{name}.jpg",
                     read_boxes(root / "Annotations" / f"{name}.xml"))


def read_boxes(xml_path: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    boxes: dict[str, list[tuple[int, int, int, int]]] = {k: [] for k in KINDS.values()}
    for obj in ET.parse(xml_path).findall("object"):
        kind = KINDS[(obj.findtext("name") or "").strip()]
        box = obj.find("bndbox")
        assert box is not None
        x0, y0, x1, y1 = (int(float(box.findtext(k) or 0)) for k in
                          ("xmin", "ymin", "xmax", "ymax"))
        boxes[kind].append((x0, y0, x1, y1))
    return boxes


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union else 0.0


def match(predicted: list[tuple[int, ...]], truth: list[tuple[int, ...]],
          threshold: float = 0.5) -> tuple[int, set[int]]:
    """Greedy one-to-one matching by IoU: (true positives, indices of matched predictions)."""
    pairs = sorted(((iou(p, t), i, j) for i, p in enumerate(predicted)
                    for j, t in enumerate(truth)), reverse=True)
    used_p: set[int] = set()
    used_t: set[int] = set()
    for value, i, j in pairs:
        if value < threshold:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_t), used_p


def box_mask(shape: tuple[int, ...], boxes: Sequence[tuple[int, int, int, int]],
             scale: float) -> np.ndarray:
    """The pixels of a working image (``shape``) inside any of ``boxes``, given in the original's
    pixels; ``scale`` is the working image's size over the original's."""
    inside = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        inside[int(y0 * scale):int(y1 * scale), int(x0 * scale):int(x1 * scale)] = True
    return inside


def red_coverage(red: np.ndarray, boxes: list[tuple[int, int, int, int]], scale: float) -> float:
    """The share of a field's red-cell pixels that lie inside some annotated RBC box.

    ``red`` is the red-cell mask of the working image, ``scale`` the working image's size over
    the original's. Where BCCD left red cells unboxed coverage is low, and its count is short.
    """
    boxed = box_mask(red.shape, boxes, scale)
    return float((red & boxed).sum() / max(int(red.sum()), 1))


def matched_centres(centres: Sequence[tuple[float, float]],
                    boxes: Sequence[tuple[float, ...]]) -> set[int]:
    """The detections whose centre lies in an annotated box that no nearer detection took."""
    pairs = sorted((np.hypot(x - (b[0] + b[2]) / 2, y - (b[1] + b[3]) / 2), i, j)
                   for i, (x, y) in enumerate(centres) for j, b in enumerate(boxes)
                   if contains(b, x, y))
    taken: set[int] = set()
    matched: set[int] = set()
    for _, i, j in pairs:
        if i not in matched and j not in taken:
            matched.add(i)
            taken.add(j)
    return matched


def judge_centres(centres: Sequence[tuple[float, float]], boxes: Sequence[tuple[int, ...]],
                  unboxed: np.ndarray) -> list[str]:
    """Each detection "true", "false" or "unknown", against an annotation that misses cells.

    A detection is true if its centre lies in an annotated box that no nearer detection took
    (so a second centre in one cell is false). An unmatched one on red-cell stain that BCCD left
    unboxed is unknown: it may be a real cell. Elsewhere (background, white cells) it is false.
    """
    matched = matched_centres(centres, boxes)
    height, width = unboxed.shape
    return ["true" if i in matched
            else "unknown" if unboxed[min(int(y), height - 1), min(int(x), width - 1)]
            else "false" for i, (x, y) in enumerate(centres)]


def score_centres(centres: Sequence[tuple[float, float]], boxes: Sequence[tuple[int, ...]],
                  unboxed: np.ndarray) -> tuple[int, int, int]:
    """How many detections are (true, false, unknown): see ``judge_centres``."""
    verdicts = judge_centres(centres, boxes, unboxed)
    return verdicts.count("true"), verdicts.count("false"), verdicts.count("unknown")


def count_in_boxes(centres: Sequence[tuple[float, float]],
                   boxes: Sequence[tuple[int, ...]]) -> int:
    """Detections whose centre lies inside some annotated box: the count where BCCD looked.

    Compared with the number of boxes, this leaves out the cells BCCD did not box at all, and
    still counts a cell found twice, or a clump found as one, against the annotation.
    """
    return sum(1 for x, y in centres
               if any(contains(b, x, y) for b in boxes))
