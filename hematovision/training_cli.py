"""``hematovision train`` and ``hematovision evaluate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from core.data import UnknownClassError
from core.model.artifact import ModelIntegrityError
from core.model.classifier import CellClassifier, resolve_device
from core.settings import Settings
from core.training.config import TrainConfig
from core.training.evaluate import evaluate_folder, format_report, save_confusion_png
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
                 png: Path) -> int:
    try:
        classifier = CellClassifier.from_artifact(model or settings.model_path, "cpu")
        report = evaluate_folder(classifier, folder, _progress)
    except (UnknownClassError, FileNotFoundError, ModelIntegrityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_confusion_png(report, png, f"{classifier.version} on {folder}")
    if as_json:
        print(json.dumps({**report.to_dict(), "model": classifier.version,
                          "confusion_png": str(png)}))
    else:
        print(format_report(report))
        print(f"\nconfusion matrix picture: {png}")
    return 0
