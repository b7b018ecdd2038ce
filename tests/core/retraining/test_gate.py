"""The promotion gate compares candidate and active model on the same test images."""

from __future__ import annotations

import torch

from core.retraining.gate import decide
from vision.training.metrics import classification_report

CLASSES = ["a", "b", "c"]
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])


def _report(predicted: list[int]):  # type: ignore[no-untyped-def]
    return classification_report(torch.eye(3)[predicted], LABELS, CLASSES)


def test_an_equal_candidate_passes() -> None:
    same = _report(LABELS.tolist())
    decision = decide(same, same, overall_margin=0.002, class_margin=0.02)
    assert decision.passed and decision.reasons == []


def test_a_candidate_worse_on_one_class_fails_even_if_better_overall() -> None:
    baseline = _report([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0])  # class c: recall 0.5
    candidate = _report([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2])  # better overall, a drops
    decision = decide(candidate, baseline, overall_margin=0.002, class_margin=0.02)
    assert candidate.accuracy > baseline.accuracy
    assert not decision.passed
    assert decision.reasons == ["a recall 0.750 < active 1.000 - 0.02"]
    assert decision.recall_changes == {"a": -0.25, "b": 0.0, "c": 0.5}


def test_a_small_drop_within_the_margins_passes() -> None:
    baseline = _report(LABELS.tolist())
    candidate = _report([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 1])
    assert not decide(candidate, baseline, 0.002, 0.02).passed
    assert decide(candidate, baseline, 0.1, 0.3).passed
