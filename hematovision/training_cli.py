"""``hematovision train`` and ``hematovision evaluate``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from core.data import UnknownClassError
from core.model.artifact import ModelIntegrityError
from core.model.classifier import CellClassifier, resolve_device
from core.settings import Settings
from core.training.config import TrainConfig
from core.training.evaluate import evaluate_folder, format_report, save_confusion_png
from core.training.mistakes import format_mistakes, save_mistake_gallery
from core.training.pipeline import run_training


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_train(settings: Settings, data: Path, config_path: Path | None, out: Path,
              device: str = "auto") -> int:
    where = resolve_device(device)
    if where.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device here; use --device cpu "
              "(or auto)", file=sys.stderr)
        return 2
    config = TrainConfig.from_file(config_path)
    model_path = out / f"{config.version}.safetensors"
    card = run_training(data, model_path, out / "checkpoint", settings.data_dir / "cache",
                        config, _progress, where)
    test = card.metrics["test"]
    print(f"model written to {model_path}: test accuracy {test['accuracy']:.4f}, "
          f"macro-F1 {test['macro_f1']:.4f}")
    return 0


def run_evaluate(settings: Settings, folder: Path, model: Path | None, as_json: bool,
                 png: Path, mistakes_png: Path | None = None) -> int:
    try:
        classifier = CellClassifier.from_artifact(model or settings.model_path, "cpu")
        evaluation = evaluate_folder(classifier, folder, _progress)
    except (UnknownClassError, FileNotFoundError, ModelIntegrityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The data set and split ("pbc/test"), not where this checkout happens to find them.
    title = f"{classifier.version} on {Path(*folder.resolve().parts[-2:])}"
    report = evaluation.report
    save_confusion_png(report, png, title)
    pictures = {"confusion_png": str(png)}
    if mistakes_png is not None:
        save_mistake_gallery(evaluation.mistakes, mistakes_png, title)
        pictures["mistakes_png"] = str(mistakes_png)
    if as_json:
        print(json.dumps({**report.to_dict(), "model": classifier.version,
                          "mistakes": [m.to_dict() for m in evaluation.mistakes], **pictures}))
    else:
        print(format_report(report))
        print(format_mistakes(evaluation.mistakes))
        print(f"\nconfusion matrix picture: {png}")
        if mistakes_png is not None:
            print(f"misclassified cells picture: {mistakes_png}")
    return 0


def run_train_red_cells(bccd: Path, out: Path, epochs: int, bionet: Path | None = None,
                        init: Path | None = None, lr: float = 1e-3) -> int:
    """Train the red-cell centre network on BCCD train (and Bio-Net train), pick its threshold
    on their val fields, save it."""
    from core.field import bionet as bionet_set
    from core.field.bccd import read_split
    from core.field.centre_net import CentreNet, load_centre_net, save_centre_net
    from core.field.detect import DetectorParams
    from core.field.learned_red_cells import LearnedRedCells
    from core.model.imagenet import load_imagenet
    from core.training.centres import (
        CentreTrainingConfig,
        make_example,
        threshold_table,
        train_centres,
    )

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
