"""``hematovision train`` and ``hematovision evaluate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from core.settings import Settings
from vision.data import UnknownClassError
from vision.model.artifact import ModelIntegrityError
from vision.model.classifier import CellClassifier, resolve_device
from vision.training.config import TrainConfig
from vision.training.evaluate import evaluate_folder, format_report, save_confusion_png
from vision.training.mistakes import format_mistakes, save_mistake_gallery
from vision.training.pipeline import run_training


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
        # As the path serves it (bf16_first), so that its accuracy is the users'.
        classifier = CellClassifier.from_artifact(model or settings.model_path, "cpu",
                                                  settings.bf16_first)
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
