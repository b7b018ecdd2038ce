"""The out-of-distribution score is the squared Mahalanobis distance to the nearest class."""

from __future__ import annotations

import torch

from vision.model.rejection import OodDetector


def _by_definition(detector: OodDetector, features: torch.Tensor) -> torch.Tensor:
    diff = features[:, None, :].double() - detector.means[None].double()
    distances = torch.einsum("ncd,de,nce->nc", diff, detector.precision.double(), diff)
    return distances.min(dim=1).values.float()


def test_the_score_is_the_distance_to_the_nearest_class_even_for_a_lopsided_precision() -> None:
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(8, 64, generator=generator)
    root = torch.randn(64, 64, generator=generator)
    # A stored precision is symmetric only to rounding: give it a real asymmetric part.
    precision = root @ root.T / 64 + 0.01 * torch.randn(64, 64, generator=generator)
    detector = OodDetector(means, precision, threshold=100.0)
    features = means[torch.arange(20) % 8] + torch.randn(20, 64, generator=generator)
    assert torch.allclose(detector.scores(features), _by_definition(detector, features),
                          rtol=1e-6)


def test_a_class_mean_scores_zero_and_a_far_point_is_rejected() -> None:
    detector = OodDetector(torch.tensor([[0.0, 0.0], [10.0, 0.0]]), torch.eye(2), threshold=9.0)
    scores = detector.scores(torch.tensor([[10.0, 0.0], [5.0, 5.0]]))
    assert scores.tolist() == [0.0, 50.0]
    assert detector.accepts(torch.tensor([[1.0, 2.0], [0.0, 4.0]])).tolist() == [True, False]
