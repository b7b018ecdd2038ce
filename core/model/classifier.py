"""Inference: a loaded artifact turned into labelled, calibrated predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from core.model.artifact import ModelCard, load_artifact
from core.model.lite0 import EfficientNetLite0

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class LabelScore:
    label: str
    confidence: float


@dataclass(frozen=True)
class CellPrediction:
    label: str
    confidence: float
    top3: tuple[LabelScore, ...]
    box: Box  # x0, y0, x1, y1 in pixels of the original image


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class CellClassifier:
    # Small batches keep the working set in cache; on 2 CPU cores they beat batches of 32+.
    batch_size = 16

    def __init__(self, model: EfficientNetLite0, card: ModelCard, device: torch.device) -> None:
        self.card = card
        self.device = device
        self.preprocess = card.preprocess
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)

    @classmethod
    def from_artifact(cls, path: Path, device: str = "auto") -> CellClassifier:
        model, card = load_artifact(path)
        return cls(model, card, resolve_device(device))

    @property
    def version(self) -> str:
        return self.card.version

    @torch.inference_mode()
    def probabilities(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Calibrated class probabilities, one row per image (on the CPU)."""
        rows = []
        for start in range(0, len(images), self.batch_size):
            batch = self.preprocess.batch(images[start:start + self.batch_size])
            batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
            logits = self.model(batch).float() / self.card.temperature
            rows.append(logits.softmax(dim=1).cpu())
        return torch.cat(rows) if rows else torch.empty(0, len(self.card.classes))

    def classify_cells(
        self, image: Image.Image, boxes: Sequence[Box]
    ) -> list[CellPrediction]:
        crops = [image.crop(box) for box in boxes]
        probs = self.probabilities(crops)
        predictions = []
        for box, row in zip(boxes, probs, strict=True):
            values, indices = row.topk(min(3, row.numel()))
            top3 = tuple(
                LabelScore(self.card.classes[int(i)], float(v))
                for v, i in zip(values, indices, strict=True)
            )
            predictions.append(CellPrediction(top3[0].label, top3[0].confidence, top3, box))
        return predictions

    def classify_image(self, image: Image.Image) -> list[CellPrediction]:
        """A single-cell image: the whole frame is the cell."""
        return self.classify_cells(image, [(0, 0, image.width, image.height)])
