"""The promotion gate compares candidate and active model on the same cells, and says in plain
words what is worse and what is better."""

from __future__ import annotations

import torch

from core.retraining.gate import HeldOut, Margins, Scorecard, decide
from vision.training.metrics import Report, classification_report

CLASSES = ["neutrophil", "lymphocyte", "monocyte"]
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
MARGINS = Margins(overall=0.002, per_class=0.02, flagged=0.01)


def _report(predicted: list[int]) -> Report:
    return classification_report(torch.eye(3)[predicted], LABELS, CLASSES)


def _card(predicted: list[int], flagged: float = 0.05,
          held_out: HeldOut | None = None) -> Scorecard:
    return Scorecard(_report(predicted), flagged, held_out)


def test_an_equal_candidate_passes() -> None:
    same = _card(LABELS.tolist())
    decision = decide(same, same, MARGINS)
    assert decision.passed and decision.reasons == [] and decision.better == []


def test_a_candidate_worse_on_one_class_fails_even_if_better_overall() -> None:
    baseline = _card([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0])  # monocytes: recall 0.5
    candidate = _card([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2])  # better overall, neutrophils drop
    decision = decide(candidate, baseline, MARGINS)
    assert not decision.passed
    assert decision.reasons == [
        "finds 75.0% of the neutrophils, against 100.0% (at most 2.0 points less allowed)"]
    assert decision.better == [
        "names 91.67% of the 12 base test cells right, against 83.33% for the active model"]
    assert decision.recall_changes == {"neutrophil": -0.25, "lymphocyte": 0.0, "monocyte": 0.5}


def test_a_small_drop_within_the_margins_passes() -> None:
    baseline = _card(LABELS.tolist())
    candidate = _card([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 1])
    assert not decide(candidate, baseline, MARGINS).passed
    assert decide(candidate, baseline, Margins(0.1, 0.3, 0.01)).passed


def test_a_candidate_that_flags_more_cells_is_kept_back_however_accurate() -> None:
    # The retrained model that named as many cells right and flagged every one for review.
    active = _card(LABELS.tolist(), flagged=0.031)
    candidate = _card(LABELS.tolist(), flagged=1.0)
    decision = decide(candidate, active, MARGINS)
    assert not decision.passed
    assert decision.reasons == ["flags 100.0% of the base test cells for review, against 3.1% "
                                "(at most 1.0 point more allowed)"]
    assert decision.candidate_flagged == 1.0 and decision.baseline_flagged == 0.031
    assert decide(_card(LABELS.tolist(), flagged=0.035), active, MARGINS).passed


def test_a_laboratorys_held_out_cells_must_be_named_at_least_as_well() -> None:
    active = _card(LABELS.tolist(), held_out=HeldOut(right=30, flagged=10, of=40))
    worse = _card(LABELS.tolist(), held_out=HeldOut(right=29, flagged=4, of=40))
    decision = decide(worse, active, MARGINS)
    assert decision.reasons == [
        "names 29 of the laboratory's 40 held-out expert cells right, against 30"]
    assert decision.better == ["flags 4 of those 40 cells, against 10"]
    better = decide(_card(LABELS.tolist(), held_out=HeldOut(34, 10, 40)), active, MARGINS)
    assert better.passed and better.better == [
        "names 34 of the laboratory's 40 held-out expert cells right, against 30"]
