"""Classification metrics computed from labels and probabilities (pure functions)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    n: int
    accuracy: float
    macro_f1: float
    ece: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    classes: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "ece": self.ece,
            "per_class": {name: vars(m) for name, m in self.per_class.items()},
            "confusion_matrix": self.confusion,
            "classes": self.classes,
        }


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    flat = y_true.long() * n_classes + y_pred.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def expected_calibration_error(probs: torch.Tensor, y_true: torch.Tensor, bins: int = 15) -> float:
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == y_true).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = (confidence[inside].mean() - correct[inside].mean()).abs()
            ece += gap * inside.float().mean()
    return float(ece)


def classification_report(
    probs: torch.Tensor, y_true: torch.Tensor, classes: Sequence[str]
) -> Report:
    y_pred = probs.argmax(dim=1)
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    per_class: dict[str, ClassMetrics] = {}
    for index, name in enumerate(classes):
        tp = int(matrix[index, index])
        predicted = int(matrix[:, index].sum())
        actual = int(matrix[index].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = ClassMetrics(precision, recall, f1, actual)
    present = [m.f1 for m in per_class.values() if m.support]
    return Report(
        n=int(y_true.numel()),
        accuracy=float((y_pred == y_true).float().mean()) if y_true.numel() else 0.0,
        macro_f1=sum(present) / len(present) if present else 0.0,
        ece=expected_calibration_error(probs, y_true),
        per_class=per_class,
        confusion=matrix.tolist(),
        classes=list(classes),
    )
