"""Train the red-cell centre network on BCCD train (and Bio-Net train), choose its threshold on
their val fields, write safetensors + card named after ``--out`` (20-30 minutes on two cores,
resumable). A research command: the product only loads the network it ships.

    python -m lab.train_red_cells --bccd ../shared/data/bccd --out var/runs/rbc-centres-v4
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from lab import bionet as bionet_set
from lab.bccd import read_split
from lab.red_cell_centres import (
    CentreTrainingConfig,
    make_example,
    threshold_table,
    train_centres,
)
from vision.field.centre_net import CentreNet, load_centre_net, save_centre_net
from vision.field.detect import DetectorParams
from vision.field.learned_red_cells import LearnedRedCells
from vision.model.imagenet import load_imagenet


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train_red_cells(bccd: Path, out: Path, epochs: int, bionet: Path | None = None,
                    init: Path | None = None, lr: float = 1e-3) -> int:
    """Train the red-cell centre network on BCCD train (and Bio-Net train), pick its threshold
    on their val fields, save it."""
    config = CentreTrainingConfig(epochs=epochs, lr=lr)
    params = DetectorParams()
    train, val = read_split(bccd, "train"), read_split(bccd, "val")
    sources = f"BCCD train ({len(train)} fields)"
    if bionet is not None:
        more = bionet_set.read_split(bionet, "train")
        sources += f" + Bio-Net train ({len(more)} fields)"
        train, val = train + more, val + bionet_set.read_split(bionet, "val")
    _progress(f"reading {sources}")
    examples = []
    for number, item in enumerate(train, start=1):
        examples.append(make_example(item, params))
        if number % 100 == 0:
            _progress(f"  {number}/{len(train)} fields prepared")
    net = load_centre_net(init)[0].train() if init is not None else CentreNet(load_imagenet())
    records = train_centres(net, examples, config, out / "checkpoint.pt", _progress)
    net.eval()
    _progress(f"choosing the heatmap threshold on {len(val)} val fields")
    rows = threshold_table(LearnedRedCells(net, 0.5, "candidate"), val,
                           [round(0.05 * k, 2) for k in range(4, 15)], params)
    # Chosen on detections, not on the count: BCCD's count is short wherever boxes are missing,
    # and fitting it would teach the threshold to miss cells.
    best = max(rows, key=lambda row: row.f1)
    for row in rows:
        _progress(f"threshold {row.threshold:.2f}: recall {row.recall:.3f}, precision "
                  f"{row.precision:.3f} (F1 {row.f1:.3f}); count error on well-boxed val "
                  f"{row.well_boxed_abs:.3f} abs, {row.well_boxed_signed:+.3f} signed; "
                  f"all val {row.all_abs:.3f} abs")
    version = out.name
    card = {
        "version": version,
        "threshold": best.threshold,
        "trained_on": f"{sources}{f', from {init.name}' if init else ''}; threshold chosen "
                      f"on their val fields",
        "config": asdict(config),
        "epochs": [asdict(r) for r in records],
        "val": [{**asdict(r), "f1": r.f1} for r in rows],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    save_centre_net(net, out / version, card)
    print(f"model written to {out / version}.safetensors: threshold {best.threshold:.2f}, "
          f"val recall {best.recall:.3f}, precision {best.precision:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.train_red_cells", description=__doc__)
    parser.add_argument("--bccd", type=Path, required=True,
                        help="BCCD in VOC layout (JPEGImages, Annotations, ImageSets)")
    parser.add_argument("--out", type=Path, default=Path("var/runs/rbc-centres"),
                        help="run folder; its name is the model's version")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--bionet", type=Path,
                        help="also Bio-Net's train fields (its val joins the threshold choice)")
    parser.add_argument("--init", type=Path,
                        help="start from this centre network (.safetensors) instead of ImageNet")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    return train_red_cells(args.bccd, args.out, args.epochs, args.bionet, args.init, args.lr)


if __name__ == "__main__":
    raise SystemExit(main())
