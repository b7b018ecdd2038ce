"""Platelets found by a small trained network that judges each violet speck in its context
(research: measured in BENCHMARKS.md; the product withholds the platelet count until a detector
reaches 0.90 recall and precision on Bio-Net's and BCCD's boxes).

The colour rule (``detect_platelets``) takes every small violet blob for a platelet: on Bio-Net
val it found 1,861 where 265 are boxed (precision 0.05), most of them in red cells' pale centres
on blue-tinted stains and on cells cut by the edge. Here every local maximum of violet outside the
white cells is a candidate (97% of Bio-Net's boxed platelets have one, about 200 a field), and a
network that sees the candidate and its surroundings (about one red cell across) decides whether it
is a platelet lying free, or stain on a red cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from torch import nn

from vision.field.detect import BALANCED_WHITE, Detection, FieldMasks, contains, touches_border
from vision.model.artifact import load_with_card, save_with_card

# Working pixels (a red cell about 51 px): the candidate with most of a red cell around it.
PATCH = 40
# Two platelets closer than this are one candidate (a platelet spans about 8-20 px).
MIN_DISTANCE = 6
CANDIDATE_SMOOTHING = 1.5
CANDIDATE_VIOLET = 0.08
# The box drawn and matched around a platelet's centre.
PLATELET_HALF_SIDE = 9


def candidates(masks: FieldMasks, white: list[Detection]) -> np.ndarray:
    """(row, column) of every violet peak in the field of view outside the white cells."""
    violet = ndi.gaussian_filter(masks.purple, CANDIDATE_SMOOTHING)
    violet[~masks.valid] = 0
    for cell in white:
        x0, y0, x1, y1 = cell.box
        violet[y0:y1, x0:x1] = 0
    peaks: np.ndarray = peak_local_max(violet, min_distance=MIN_DISTANCE,
                                       threshold_abs=CANDIDATE_VIOLET, exclude_border=False)
    return peaks.reshape(-1, 2)


def patches(balanced: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """PATCHxPATCH crops of the white-balanced field around ``centres`` (N x P x P x 3, uint8),
    the field padded with the balanced background."""
    half = PATCH // 2
    padded = np.pad(np.clip(balanced, 0, 255).astype(np.uint8),
                    ((half, half), (half, half), (0, 0)), constant_values=int(BALANCED_WHITE))
    crops = [padded[row:row + PATCH, col:col + PATCH] for row, col in centres]
    return np.stack(crops) if crops else np.zeros((0, PATCH, PATCH, 3), np.uint8)


def to_input(crops: np.ndarray) -> torch.Tensor:
    array = crops.astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
                         nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class PlateletNet(nn.Module):
    """A platelet-or-not logit per crop: three stages of two convolutions, pooled."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(3, width), _block(width, width), nn.MaxPool2d(2),
            _block(width, 2 * width), _block(2 * width, 2 * width), nn.MaxPool2d(2),
            _block(2 * width, 4 * width), _block(4 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logit = nn.Linear(4 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.logit(self.features(x)).squeeze(1)
        return logits


@dataclass(frozen=True)
class LearnedPlatelets:
    """Finds platelets with a trained ``PlateletNet`` over the violet peaks of a field."""

    net: PlateletNet
    threshold: float
    version: str

    @classmethod
    def load(cls, path: Path) -> LearnedPlatelets:
        net, card = load_platelet_net(path)
        return cls(net, float(card["threshold"]), str(card["version"]))  # type: ignore[arg-type]

    def probabilities(self, masks: FieldMasks, centres: np.ndarray) -> np.ndarray:
        if not len(centres):
            return np.zeros(0, np.float32)
        with torch.inference_mode():
            logits = self.net(to_input(patches(masks.balanced, centres)))
        result: np.ndarray = torch.sigmoid(logits).numpy()
        return result

    def __call__(self, masks: FieldMasks, white: list[Detection]) -> list[Detection]:
        centres = candidates(masks, white)
        scores = self.probabilities(masks, centres)
        chosen = scores >= self.threshold
        return platelet_detections(masks, centres[chosen], scores[chosen], white)


def platelet_detections(masks: FieldMasks, centres: np.ndarray, scores: np.ndarray,
                        white: list[Detection]) -> list[Detection]:
    height, width = masks.valid.shape
    found = []
    for (row, col), score in zip(centres.tolist(), scores.tolist(), strict=True):
        if any(contains(cell.box, col, row) for cell in white):
            continue
        half = PLATELET_HALF_SIDE
        box = (max(0, col - half), max(0, row - half), min(width, col + half + 1),
               min(height, row + half + 1))
        found.append(Detection("platelet", box, touches_border(box, masks.valid, (height, width)),
                               float(score)))
    return found


def save_platelet_net(model: PlateletNet, path: Path, card: dict[str, object]) -> None:
    save_with_card(model.state_dict(), path, card)


def load_platelet_net(path: Path) -> tuple[PlateletNet, dict[str, object]]:
    weights, card = load_with_card(path)
    model = PlateletNet(int(card.get("width", 24)))  # type: ignore[call-overload]
    model.load_state_dict(weights, strict=True)
    return model.eval(), card
