"""Recognising what is not a blood cell: Mahalanobis distance in the classifier's feature space.

Class means and one shared covariance are fitted on training features (Lee et al. 2018); an input
farther from every class than the threshold (set on validation cells for a target false-reject
rate) is "not recognised" instead of a confident guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class OodDetector:
    means: torch.Tensor  # C x D
    precision: torch.Tensor  # D x D
    threshold: float

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Distance to the nearest class (squared Mahalanobis), one per row.

        Expanded as x'Px - 2x'Pm + m'Pm, in float64: one product with the precision a cell
        instead of one a class (a cell's score took 23 ms), equal to the float32 it is read in.
        """
        precision, means, means_norm = self._float64
        x = features.double()
        xp = x @ precision
        distances = (xp * x).sum(dim=1, keepdim=True) - 2 * xp @ means.T + means_norm[None]
        return distances.min(dim=1).values.float()

    @cached_property
    def _float64(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The precision's symmetric part (all a quadratic form sees, so the expansion holds for
        any stored precision), the class means and their m'Pm, in float64."""
        precision, means = self.precision.double(), self.means.double()
        precision = (precision + precision.T) / 2
        return precision, means, ((means @ precision) * means).sum(dim=1)

    def accepts(self, features: torch.Tensor) -> torch.Tensor:
        return self.scores(features) <= self.threshold

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"ood.means": self.means.contiguous(), "ood.precision": self.precision.contiguous(),
                "ood.threshold": torch.tensor([self.threshold])}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> OodDetector | None:
        if "ood.means" not in tensors:
            return None
        return cls(tensors["ood.means"], tensors["ood.precision"],
                   float(tensors["ood.threshold"][0]))


def fit_detector(features: torch.Tensor, labels: torch.Tensor, val_features: torch.Tensor,
                 target_false_reject: float = 0.005, shrinkage: float = 1e-3) -> OodDetector:
    classes = int(labels.max()) + 1
    feats = features.double()
    means = torch.stack([feats[labels == c].mean(dim=0) for c in range(classes)])
    centred = feats - means[labels]
    covariance = centred.T @ centred / len(feats)
    # A little shrinkage keeps the inverse stable where some directions barely vary.
    scale = covariance.diagonal().mean().clamp_min(1e-6)
    covariance += shrinkage * scale * torch.eye(covariance.shape[0], dtype=torch.float64)
    precision = torch.linalg.inv(covariance)
    detector = OodDetector(means.float(), precision.float(), threshold=float("inf"))
    val_scores = detector.scores(val_features)
    threshold = float(torch.quantile(val_scores.double(), 1 - target_false_reject))
    return OodDetector(detector.means, detector.precision, threshold)
