"""``hematovision evaluate``: a model against an image-folder tree, with a confusion-matrix PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from vision.data import index_image_folder
from vision.labels import display_name
from vision.model.classifier import CellClassifier
from vision.plotting import headless_pyplot
from vision.training.features import Progress
from vision.training.metrics import Report, classification_report
from vision.training.mistakes import Mistake, mistakes_of


@dataclass(frozen=True)
class Evaluation:
    report: Report
    mistakes: list[Mistake]  # the most confident first


def evaluate_folder(classifier: CellClassifier, root: Path, progress: Progress,
                    batch_size: int = 64) -> Evaluation:
    samples = index_image_folder(root, classifier.card.classes)
    if not samples:
        raise ValueError(f"no images under {root}")
    rows = []
    for start in range(0, len(samples), batch_size):
        images = []
        for sample in samples[start:start + batch_size]:
            with Image.open(sample.path) as image:
                images.append(image.convert("RGB"))
        rows.append(classifier.probabilities(images))
        progress(f"  evaluated {min(start + batch_size, len(samples))}/{len(samples)}")
    probabilities = torch.cat(rows)
    labels = torch.tensor([s.label for s in samples])
    classes = classifier.card.classes
    return Evaluation(classification_report(probabilities, labels, classes),
                      mistakes_of(samples, probabilities, classes))


def save_confusion_png(report: Report, path: Path, title: str) -> None:
    plt = headless_pyplot()
    names = [display_name(c) for c in report.classes]
    matrix = torch.tensor(report.confusion, dtype=torch.float64)
    share = matrix / matrix.sum(dim=1, keepdim=True).clamp_min(1)
    figure, axes = plt.subplots(figsize=(8, 7), dpi=120)
    axes.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            count = int(matrix[i, j])
            if count:
                axes.text(j, i, str(count), ha="center", va="center", fontsize=8,
                          color="white" if share[i, j] > 0.5 else "black")
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{title}\naccuracy {report.accuracy:.2%}, macro-F1 {report.macro_f1:.3f}, "
                   f"n = {report.n}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def format_report(report: Report) -> str:
    lines = [f"n = {report.n}", f"accuracy  {report.accuracy:.4f}",
             f"macro-F1  {report.macro_f1:.4f}", f"ECE       {report.ece:.4f}", "",
             f"{'class':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'n':>7}"]
    for name, metrics in report.per_class.items():
        lines.append(f"{display_name(name):<22}{metrics.precision:>10.4f}{metrics.recall:>10.4f}"
                     f"{metrics.f1:>10.4f}{metrics.support:>7}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    width = max(6, *(len(str(v)) + 1 for row in report.confusion for v in row))
    lines.append(" " * 14 + "".join(f"{c[:width - 1]:>{width}}" for c in report.classes))
    for name, row in zip(report.classes, report.confusion, strict=True):
        lines.append(f"{name:<14}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
