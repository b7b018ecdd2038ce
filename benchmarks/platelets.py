"""Platelets found against Bio-Net's and BCCD's platelet boxes: the colour rule and the network.

    python -m benchmarks.platelets [--splits val test] [--model var/runs/platelets-v1/platelets-v1]

The network is trained by ``python -m lab.train_platelets --out var/runs/platelets-v1 --width 16
--epochs 8`` (about 15 minutes on two cores); the product does not use it (see BENCHMARKS.md).

A platelet is found when a detection's centre lies in its box, one detection a box (the nearer
first); recall is of the boxes, precision of the detections. BCCD leaves many platelets unboxed
(README: "some RBCs are not boxed", and platelets alike), so its precision is a lower bound.
Prints a Markdown table; BENCHMARKS.md keeps the numbers of the last run.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from benchmarks.paths import BCCD, BIONET
from lab import bccd, bionet
from lab.bccd import Annotated, matched_centres
from lab.platelet_net import LearnedPlatelets
from vision.field.detect import (
    Detection,
    DetectorParams,
    FieldMasks,
    detect_platelets,
    detect_white_cells,
    working_masks,
)
from vision.field.scale import image_scale

Finder = Callable[[FieldMasks, list[Detection]], list[Detection]]
SETS = {"Bio-Net": (bionet.read_split, BIONET), "BCCD": (bccd.read_split, BCCD)}


def score(items: list[Annotated], finders: dict[str, Finder]) -> dict[str, dict[str, float]]:
    """Per finder: recall, precision, mean absolute count error per field, boxes, found."""
    params = DetectorParams()
    tally = {name: [0, 0, 0] for name in finders}  # true, found, boxed
    errors: dict[str, list[int]] = {name: [] for name in finders}
    for item in items:
        image = Image.open(item.image).convert("RGB")
        masks, factor = working_masks(image, image_scale(image).red_cell_px, params)
        white = detect_white_cells(masks, params)
        truth = [tuple(v * factor for v in box) for box in item.boxes["platelet"]]
        for name, finder in finders.items():
            centres = [d.centre for d in finder(masks, white)]
            tally[name][0] += len(matched_centres(centres, truth))
            tally[name][1] += len(centres)
            tally[name][2] += len(truth)
            errors[name].append(abs(len(centres) - len(truth)))
    return {name: {"recall": t[0] / max(t[2], 1), "precision": t[0] / max(t[1], 1),
                   "count_error": statistics.mean(errors[name]), "boxed": t[2], "found": t[1]}
            for name, t in tally.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.platelets", description=__doc__)
    parser.add_argument("--splits", nargs="+", default=["val", "test"])
    parser.add_argument("--model", type=Path,
                        default=Path("var/runs/platelets-v1/platelets-v1"))
    args = parser.parse_args(argv)
    params = DetectorParams()
    network = LearnedPlatelets.load(args.model)
    finders: dict[str, Finder] = {
        "colour rule": lambda masks, white: detect_platelets(masks, white, params),
        f"network {network.version} (threshold {network.threshold:.2f})": network,
    }
    print("| set | split | fields | boxed | finder | found | recall | precision "
          "| count error / field |")
    print("|---|---|---|---|---|---|---|---|---|")
    for set_name, (reader, root) in SETS.items():
        for split in args.splits:
            items = reader(root, split)
            for name, row in score(items, finders).items():
                print(f"| {set_name} | {split} | {len(items)} | {row['boxed']:.0f} | {name} "
                      f"| {row['found']:.0f} | {row['recall']:.3f} | {row['precision']:.3f} "
                      f"| {row['count_error']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
