"""The first PBC head: a linear classifier on frozen ImageNet Lite0 features.

Quick to train on two cores (one forward pass per image), it gives the whole serving path a real
model while the fine-tuned classifier is trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import index_image_folder, manifest_hash
from core.labels import PBC_CLASSES
from core.model.artifact import ModelCard, save_artifact
from core.model.imagenet import load_imagenet
from core.model.preprocess import Preprocessing
from core.training.calibration import fit_temperature
from core.training.features import Progress, cached_features
from core.training.metrics import classification_report


@dataclass(frozen=True)
class LinearHead:
    weight: torch.Tensor
    bias: torch.Tensor
    weight_decay: float

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T + self.bias


def fit_linear_head(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, weight_decay: float
) -> LinearHead:
    weight = torch.zeros(n_classes, features.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(features @ weight.T + bias, labels)
        loss = loss + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return LinearHead(weight.detach(), bias.detach(), weight_decay)


def train_linear_probe(
    data_root: Path, out: Path, cache_dir: Path, version: str, progress: Progress = print
) -> ModelCard:
    started = time.monotonic()
    torch.manual_seed(0)
    preprocess = Preprocessing()
    backbone = load_imagenet()
    splits = {}
    for split in ("train", "val", "test"):
        samples = index_image_folder(data_root / split, PBC_CLASSES)
        progress(f"{split}: {len(samples)} images")
        features, labels = cached_features(
            cache_dir / f"lite0-imagenet-{split}.safetensors", backbone, samples, preprocess,
            progress,
        )
        splits[split] = (features, labels, manifest_hash(samples, data_root / split))

    train_x, train_y, _ = splits["train"]
    val_x, val_y, _ = splits["val"]
    best: LinearHead | None = None
    best_acc = -1.0
    for decay in (1e-5, 1e-4, 1e-3):
        head = fit_linear_head(train_x, train_y, len(PBC_CLASSES), decay)
        acc = float((head.logits(val_x).argmax(1) == val_y).float().mean())
        progress(f"weight decay {decay:g}: val accuracy {acc:.4f}")
        if acc > best_acc:
            best, best_acc = head, acc
    assert best is not None
    temperature = fit_temperature(best.logits(val_x), val_y)

    test_x, test_y, _ = splits["test"]
    test_logits = best.logits(test_x)
    raw = classification_report(test_logits.softmax(1), test_y, PBC_CLASSES)
    calibrated = classification_report((test_logits / temperature).softmax(1), test_y, PBC_CLASSES)
    progress(f"test accuracy {calibrated.accuracy:.4f}, macro-F1 {calibrated.macro_f1:.4f}, "
             f"ECE {raw.ece:.4f} -> {calibrated.ece:.4f} (T={temperature:.3f})")

    backbone.replace_classifier(len(PBC_CLASSES))
    with torch.no_grad():
        backbone.classifier.weight.copy_(best.weight)
        backbone.classifier.bias.copy_(best.bias)
    card = ModelCard(
        version=version,
        classes=list(PBC_CLASSES),
        preprocessing=preprocess.to_dict(),
        temperature=temperature,
        metrics={
            "test": {**calibrated.to_dict(), "ece_before_temperature": raw.ece},
            "val_accuracy": best_acc,
        },
        data={
            "dataset": "PBC (Acevedo et al. 2020), ../shared/data/pbc",
            **{f"{split}_manifest_sha256": digest for split, (_, _, digest) in splits.items()},
            **{f"{split}_images": int(y.numel()) for split, (_, y, _) in splits.items()},
        },
        training={
            "method": "linear probe on frozen ImageNet EfficientNet-Lite0 features (224 px)",
            "optimiser": "L-BFGS, full batch",
            "weight_decay": best.weight_decay,
            "wall_seconds": round(time.monotonic() - started, 1),
        },
    )
    return save_artifact(backbone, card, out)
