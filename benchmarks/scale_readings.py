"""How far the scale the path frames cells by is from a field's red-cell boxes.

    python -m benchmarks.scale_readings [--sets bionet-train bionet-val bccd-val ...]
        [--limit N] [--json OUT]

For every field with at least ``MIN_RED_BOXES`` boxed red cells, the truth is the median side of
its red-cell boxes (the granulometry is calibrated to read the box side). Each field is read
whole, and each of its boxed white cells is cut out as other laboratories crop them
(``benchmarks.cross_lab.FRAMINGS``, framed by the boxes' scale so that the framing does not
depend on the reading under test) and read alone, as ``analyse`` settles the scale
(``vision.field.analyse.settled_scale``). Per set and framing: the median reading over the truth,
its 10th and 90th percentiles, the share more than 20% and 35% off, and the share read by the
white-cell ruler. A frame 20-25% off costs the classifier about a point, 30-40% off 2-5 points
(BENCHMARKS.md). Scale only: no classifier, a few minutes a set on two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from benchmarks.cross_lab import FRAMINGS, crop_around, emit, field_sets
from lab.bccd import Annotated
from vision.field.analyse import settled_scale
from vision.field.scale import RED_CELL_UM

MIN_RED_BOXES = 5
WHOLE_FIELD = "whole field"


@dataclass
class Readings:
    ratios: list[float] = field(default_factory=list)  # reading over the boxes' red-cell side
    by_white_cells: int = 0

    def add(self, red_cell_px: float, truth: float, ruler: str) -> None:
        self.ratios.append(red_cell_px / truth)
        self.by_white_cells += ruler == "white cells"

    def row(self) -> dict[str, float]:
        ratios = self.ratios
        deciles = statistics.quantiles(ratios, n=10) if len(ratios) > 1 else ratios * 9
        return {"readings": len(ratios), "median": statistics.median(ratios),
                "p10": deciles[0], "p90": deciles[-1],
                "off_20": sum(abs(r - 1) > 0.2 for r in ratios) / len(ratios),
                "off_35": sum(abs(r - 1) > 0.35 for r in ratios) / len(ratios),
                "white_cell_ruler": self.by_white_cells / len(ratios)}


def box_red_cell_px(item: Annotated) -> float | None:
    """The median side of the field's red-cell boxes, if it has enough of them."""
    boxes = item.boxes["rbc"]
    if len(boxes) < MIN_RED_BOXES:
        return None
    return statistics.median(((b[2] - b[0]) + (b[3] - b[1])) / 2 for b in boxes)


def read_set(items: list[Annotated]) -> dict[str, Readings]:
    readings: dict[str, Readings] = defaultdict(Readings)
    for item in items:
        truth = box_red_cell_px(item)
        if truth is None:
            continue
        image = Image.open(item.image).convert("RGB")
        scale = settled_scale(image)
        readings[WHOLE_FIELD].add(scale.red_cell_px, truth, scale.ruler)
        for box in item.boxes["wbc"]:
            for name, framing in FRAMINGS.items():
                crop, _ = crop_around(image, box, framing(box, truth / RED_CELL_UM))
                scale = settled_scale(crop)
                readings[name].add(scale.red_cell_px, truth, scale.ruler)
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["bionet-val", "bccd-val"],
                        help="field sets: bionet-/bccd- and train, val or test")
    parser.add_argument("--limit", type=int, help="at most this many fields per set")
    parser.add_argument("--json", type=Path, help="write every row here too")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for name, items in field_sets(args.sets, args.limit):
        for framing, readings in read_set(items).items():
            row = {"set": name, "framing": framing,
                   **{k: round(v, 3) for k, v in readings.row().items()}}
            emit(rows, row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
