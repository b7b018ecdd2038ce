"""Each model's figures for the promotion gate, measured on the same cells as the path judges
them (``vision.field.analyse.crop_cell``: a cell unlike the training cells keeps its label and
is flagged "unusual")."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from PIL import Image

from core.retraining.gate import HeldOut, Scorecard
from vision.field.analyse import crop_cell
from vision.model.classifier import CellClassifier
from vision.training.augment import centre_batch, normalise
from vision.training.metrics import classification_report


def held_out_answers(classifier: CellClassifier, crops: Sequence[Image.Image],
                     labels: Sequence[str]) -> list[tuple[float, bool, bool]]:
    """(confidence, right, flagged by the model) per held-out cell, as the path answers a
    detected white cell: one unlike the training cells keeps its label (flagged "unusual"),
    never "not recognised"."""
    cells = [crop_cell(p, classifier)
             for p in classifier.classify_crops(list(crops), reject_outliers=False)] \
        if crops else []
    return [(round(c.confidence or 0.0, 6), c.label == label, c.review)
            for c, label in zip(cells, labels, strict=True)]


def right_count(answers: Sequence[tuple[float, bool, bool]]) -> int:
    return sum(right for _confidence, right, _flagged in answers)


# An answer this confident and unflagged is taken at face value.
FACE_VALUE = 0.9


def confidently_wrong(answers: Sequence[tuple[float, bool, bool]]) -> int:
    return sum(confidence >= FACE_VALUE and not right and not flagged
               for confidence, right, flagged in answers)


def preferred(passed: Mapping[str, bool],
              answers: Mapping[str, Sequence[tuple[float, bool, bool]]],
              fast: str) -> str:
    """Of a laboratory's candidate adaptations (by kind), the one to serve: a passing one over
    a failing one; then the one naming more held-out cells right, less those it names wrong at
    face value (a confident, unflagged wrong answer costs as much as a right one gains); the
    ``fast`` one on a tie.

    Counted by right answers alone, DeepAPL at 25 cells a class would have been given the tail
    mixed at 0.6: 4.5 points more of the held-out patients' cells named right, but 19% of its
    face-value answers wrong against the head's 0% (``python -m lab.tail_adapt``, 2026-12-07).
    On LISC and Bio-Net the same rule keeps the tail that names more.
    """
    return max(answers, key=lambda kind: (passed[kind],
                                          right_count(answers[kind])
                                          - confidently_wrong(answers[kind]),
                                          kind == fast))


# Cells scored between two progress reports: a few seconds on two cores.
CHUNK = 128
Counted = Callable[[int, int], None]  # (cells scored, of how many)


def counted(sink: Callable[[str, dict[str, Any]], None], name: str) -> Counted:
    """Progress of scoring the base test cells with the model ``name``, told to a job's
    ``sink`` (``core.retraining.run.ProgressSink``) as its "evaluating" stage."""
    return lambda done, total: sink("evaluating", {
        "detail": f"{name}: {done} of {total} base test cells"})


def cached_scores(classifier: CellClassifier, images: torch.Tensor, crop: int,
                  progress: Counted = lambda _done, _total: None,
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``classifier``'s scores of cached base images (uint8 squares), seen as in training."""
    return _chunked(lambda i: classifier.forward(normalise(centre_batch(
        images[i:i + CHUNK], crop))), len(images), progress)


def image_scores(classifier: CellClassifier, images: Sequence[Image.Image],
                 progress: Counted = lambda _done, _total: None,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``classifier``'s scores of ``images``, as it serves them."""
    return _chunked(lambda i: classifier.scores(images[i:i + CHUNK]), len(images), progress)


def _chunked(score: Callable[[int], tuple[torch.Tensor, torch.Tensor | None]], total: int,
             progress: Counted) -> tuple[torch.Tensor, torch.Tensor | None]:
    parts = []
    for start in range(0, total, CHUNK):
        parts.append(score(start))
        progress(min(start + CHUNK, total), total)
    probs = torch.cat([p for p, _ in parts]) if parts else torch.empty(0)
    oods = [o for _, o in parts if o is not None]
    return probs, (torch.cat(oods) if oods else None)


def flagged_share(classifier: CellClassifier, probs: torch.Tensor,
                  ood: torch.Tensor | None) -> float:
    """The share of cells (their calibrated ``probs`` and rejection scores) that the model
    itself would flag for review: unusual, unsure or possibly a blast."""
    if not len(probs):
        return 0.0
    boxes = [(0, 0, 1, 1)] * len(probs)
    predictions = classifier.predictions(probs, ood, boxes, reject_outliers=False)
    return sum(crop_cell(p, classifier).review for p in predictions) / len(predictions)


def scorecard(classifier: CellClassifier, probs: torch.Tensor, ood: torch.Tensor | None,
              labels: torch.Tensor, held_out: Sequence[tuple[float, bool, bool]] | None = None,
              ) -> Scorecard:
    """The gate's figures for ``classifier`` from its scores of the base test cells and its
    answers (confidence, right, flagged) on a laboratory's held-out cells, if any."""
    report = classification_report(probs, labels, classifier.card.classes)
    answers = None if held_out is None else HeldOut(
        right_count(held_out), sum(flagged for _c, _r, flagged in held_out), len(held_out))
    return Scorecard(report, flagged_share(classifier, probs, ood), answers)
