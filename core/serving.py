"""The classifier as the service runs it, for the workers and the command line alike."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from vision.model.classifier import CellClassifier


def serving_classifier(path: Path, settings: Settings) -> CellClassifier:
    """The model at ``path`` on ``settings.device``; on a CPU, as frozen TorchScript where the
    settings ask for it (10-20% faster a cell, the same labels: ``benchmarks.path_labels``)."""
    classifier = CellClassifier.from_artifact(path, settings.device)
    if settings.torchscript and classifier.device.type == "cpu":
        classifier.compile_for_cpu()
    return classifier
