"""``hematovision train``: fine-tune, calibrate, fit rejection, benchmark, write the artifact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from vision.model.artifact import ModelCard, attribution_of, save_artifact
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.model.rejection import OodDetector, fit_detector
from vision.training.augment import centre_batch, normalise
from vision.training.calibration import fit_temperature
from vision.training.config import TrainConfig
from vision.training.features import Progress
from vision.training.finetune import fine_tune, predict_features
from vision.training.metrics import classification_report
from vision.training.noncell import non_cell_images
from vision.training.robustness import CORRUPTIONS


@torch.no_grad()
def robustness(model: EfficientNetLite, images: torch.Tensor, labels: torch.Tensor,
               crop: int, progress: Progress) -> dict[str, Any]:
    model.eval()
    results: dict[str, Any] = {}
    for spec in CORRUPTIONS:
        correct = 0
        for start in range(0, len(images), 64):
            x = spec.apply(centre_batch(images[start:start + 64], crop))
            logits = model(normalise(x).contiguous(memory_format=torch.channels_last))
            correct += int((logits.argmax(1) == labels[start:start + 64]).sum())
        accuracy = correct / len(images)
        results[spec.name] = {"accuracy": round(accuracy, 5), "description": spec.description}
        progress(f"  robustness {spec.name}: {accuracy:.4f}")
    return results


@torch.no_grad()
def rejection_benchmark(model: EfficientNetLite, detector: OodDetector,
                        test_features: torch.Tensor, preprocess: Preprocessing) -> dict[str, Any]:
    names, images = zip(*non_cell_images(), strict=True)
    x = preprocess.batch(list(images)).contiguous(memory_format=torch.channels_last)
    outside = detector.accepts(model.eval().features(x))
    accepted = [name for name, ok in zip(names, outside.tolist(), strict=True) if ok]
    return {
        "non_cell_images": len(names),
        "false_accept_rate": round(len(accepted) / len(names), 5),
        "false_accepts": accepted,
        "false_reject_rate_test": round(
            float((~detector.accepts(test_features)).float().mean()), 5),
        "threshold": detector.threshold,
    }


def run_training(data_root: Path, out: Path, run_dir: Path, cache_dir: Path,
                 config: TrainConfig, progress: Progress = print,
                 device: torch.device | None = None) -> ModelCard:
    started = time.monotonic()
    trained = fine_tune(data_root, run_dir, cache_dir, config, progress, device=device)
    model, splits = trained.model, trained.splits
    crop = config.serving_resolution
    preprocess = Preprocessing.for_crop(crop)
    progress("calibrating on val")
    # Embeddings of val and test serve calibration, the test report and the rejection step.
    val_features = predict_features(model, splits["val"].images, crop)
    test_features = predict_features(model, splits["test"].images, crop)
    with torch.no_grad():
        val_logits = model.classifier(val_features)
        test_logits = model.classifier(test_features)
    temperature = fit_temperature(val_logits, splits["val"].labels)
    raw = classification_report(test_logits.softmax(1), splits["test"].labels, config.classes)
    report = classification_report((test_logits / temperature).softmax(1),
                                   splits["test"].labels, config.classes)
    progress(f"test accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, "
             f"ECE {raw.ece:.4f} -> {report.ece:.4f} (T = {temperature:.3f})")

    progress("fitting the rejection step")
    train_features = predict_features(model, splits["train"].images, crop)
    detector = fit_detector(train_features, splits["train"].labels, val_features)
    rejection = rejection_benchmark(model, detector, test_features, preprocess)
    progress(f"rejection: false accepts {rejection['false_accept_rate']:.3f} of "
             f"{rejection['non_cell_images']} non-cell images, false rejects on test "
             f"{rejection['false_reject_rate_test']:.4f}")
    corrupted: dict[str, Any] = {}
    if config.robustness_benchmark:
        progress("robustness benchmark on test")
        corrupted = robustness(model, splits["test"].images, splits["test"].labels, crop,
                               progress)

    minutes = [entry["minutes"] for entry in trained.history]
    card = ModelCard(
        version=config.version,
        classes=list(config.classes),
        sources=config.sources,
        attribution=attribution_of(config.sources),
        preprocessing=preprocess.to_dict(),
        temperature=temperature,
        metrics={
            "test": {**report.to_dict(), "ece_before_temperature": raw.ece},
            "robustness": corrupted,
            "rejection": rejection,
        },
        data={
            "dataset": str(data_root),
            "extra_train": [str(source.root) for source in config.extra_train],
            **{f"{name}_manifest_sha256": split.manifest for name, split in splits.items()},
            **{f"{name}_images": len(split.samples) for name, split in splits.items()},
        },
        training={
            "config": config.model_dump(mode="json"),
            "history": trained.history,
            "minutes_per_epoch": minutes,
            "training_minutes": round(trained.wall_seconds / 60, 1),
            "total_minutes_with_evaluation": round((time.monotonic() - started) / 60, 1),
            "threads": config.threads,
            "machine": trained.device,
        },
    )
    return save_artifact(model, card, out, detector)


