"""Lay out the image-folder tree the abnormal-cells recipe trains on, as links to the shared
data (nothing copied): PBC's splits, DeepAPL's patients split as its manifest splits them, and
Bio-Net's labelled white cells (``python -m benchmarks.bionet_cells`` cuts them from its fields).

    python -m lab.abnormal_data [--out var/data]

writes ``OUT/pbc-deepapl/{train,val,test}/<label>/`` (every source) and
``OUT/deepapl-train/train/<label>/`` (DeepAPL's train patients alone, which the recipe repeats:
a few hundred cells a class beside PBC's thousands).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SPLITS = ("train", "val", "test")


def _link(source: Path, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        target.symlink_to(source.resolve())


def lay_out(out: Path, pbc: Path, deepapl: Path, bionet_cells: Path | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    tree = out / "pbc-deepapl"
    for split in SPLITS:
        for image in sorted((pbc / split).glob("*/*")):
            _link(image, tree / split / image.parent.name, f"pbc-{image.name}")
            counts[f"pbc {split}"] = counts.get(f"pbc {split}", 0) + 1
    with (deepapl / "manifest.csv").open() as handle:
        for row in csv.DictReader(handle):
            image = deepapl / row["path"]
            name = f"deepapl-{row['patient']}-{image.name}"
            _link(image, tree / row["split"] / row["label"], name)
            if row["split"] == "train":
                _link(image, out / "deepapl-train" / "train" / row["label"], name)
            counts[f"deepapl {row['split']}"] = counts.get(f"deepapl {row['split']}", 0) + 1
    if bionet_cells is not None:
        for split in SPLITS:
            for image in sorted((bionet_cells / split).glob("*/*")):
                _link(image, tree / split / image.parent.name, f"bionet-{image.name}")
                counts[f"bionet {split}"] = counts.get(f"bionet {split}", 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.abnormal_data", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "data")
    parser.add_argument("--pbc", type=Path, default=SHARED / "pbc")
    parser.add_argument("--deepapl", type=Path, default=SHARED / "deepapl")
    parser.add_argument("--bionet-cells", type=Path, default=ROOT / "var" / "cells" / "bionet",
                        help="Bio-Net's labelled white cells (benchmarks.bionet_cells); "
                             "left out where absent")
    args = parser.parse_args(argv)
    cells = args.bionet_cells if args.bionet_cells.is_dir() else None
    for what, count in lay_out(args.out, args.pbc, args.deepapl, cells).items():
        print(f"{what}: {count} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
