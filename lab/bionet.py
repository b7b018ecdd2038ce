"""The Bio-Net field data set (boxes flattened into one CSV), for development and benchmarks."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from lab.bccd import KINDS, Annotated


def read_split(root: Path, split: str) -> list[Annotated]:
    """Every field of ``split`` (``fields/SPLIT/*.jpg``) with its boxes by kind."""
    boxes: dict[str, dict[str, list[tuple[int, int, int, int]]]] = defaultdict(
        lambda: {kind: [] for kind in KINDS.values()})
    with (root / "annotations.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] != split:
                continue
            box = (int(row["xmin"]), int(row["ymin"]), int(row["xmax"]), int(row["ymax"]))
            boxes[row["image"]][KINDS[row["label"]]].append(box)
    return [Annotated(path, boxes[path.name])
            for path in sorted((root / "fields" / split).glob("*.jpg"))]
