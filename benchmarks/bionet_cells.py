"""Bio-Net's labelled white cells as an image folder, framed as the product frames them.

Each field's scale is measured from its red cells (``image_scale``) and the white cell's box
centre is cropped at PBC's physical framing, padded with the field's background: the same crop
``analyse`` hands the classifier. The folders serve as a second training source
(``extra_train`` in a recipe) and as another laboratory's validation and test cells.

    python -m benchmarks.bionet_cells  # -> var/cells/bionet/{train,val,test}/<subtype>/
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

from benchmarks.paths import BIONET, WORK
from vision.field.analyse import centred_crop, frame_side
from vision.field.detect import DetectorParams, box_centre, working_masks
from vision.field.scale import image_scale


def write_cells(root: Path, out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    params = DetectorParams()
    with (root / "annotations.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if row["label"] == "WBC" and row["wbc_subtype"]]
    for row in rows:
        with Image.open(root / "fields" / row["split"] / row["image"]) as opened:
            field = opened.convert("RGB")
        scale = image_scale(field)
        masks, _ = working_masks(field, scale.red_cell_px, params)
        box = (int(row["xmin"]), int(row["ymin"]), int(row["xmax"]), int(row["ymax"]))
        folder = out / row["split"] / row["wbc_subtype"]
        folder.mkdir(parents=True, exist_ok=True)
        crop = centred_crop(field, box_centre(box), frame_side(scale), masks.background_rgb)
        crop.save(folder / f"{Path(row['image']).stem}-{box[0]}-{box[1]}.png")
        key = f"{row['split']}/{row['wbc_subtype']}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bionet", type=Path, default=BIONET)
    parser.add_argument("--out", type=Path, default=WORK / "cells" / "bionet")
    args = parser.parse_args()
    for key, count in sorted(write_cells(args.bionet, args.out).items()):
        print(f"{key}: {count}")


if __name__ == "__main__":
    main()
