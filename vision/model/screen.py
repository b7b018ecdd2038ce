"""A classifier of the normal classes screened for blasts by one that knows them.

The model that knows blasts (trained on leukaemia patients' cells too) names other
laboratories' and healthy donors' normal cells worse than the normal classifier does, which
names no blast at all. Screened, each answers what it is best at: the screen gives the
probability that a cell is a blast (or a promonocyte), the classifier how the rest divides among
its classes,

    P(blast-like class b) = screen's P(b),
    P(class c)            = (1 - screen's P(blast or promonocyte)) * classifier's P(c),

one distribution over both sets of classes, so the label, the confidence shown and the
possible-blast flag read it as they read one model's.

Only the blast-like classes: a blast called normal is the miss that hides a leukaemia. The
screen's other abnormal classes cost more than they give where the classifier is right: on
validation they changed no PBC answer, but the shipped screen names many of LISC's normal cells
(a laboratory neither model learnt) smudge cells.

The shipped screen learnt with the classifier's stem and first blocks fixed, so the two run in
one pass that computes those once (``vision.model.classifier.shared_trunk``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vision.labels import BLAST_LIKE


def screened_columns(classes: Sequence[str], screen_classes: Sequence[str]) -> list[int]:
    """The screen's columns of the blast-like classes, where the classifier names none."""
    if any(label in BLAST_LIKE for label in classes):
        return []
    return [i for i, label in enumerate(screen_classes) if label in BLAST_LIKE]


def screened(probs: torch.Tensor, screen_probs: torch.Tensor,
             columns: Sequence[int]) -> torch.Tensor:
    """N x (C + len(columns)) probabilities: the classifier's ``probs`` (N x C) scaled by what
    the screen leaves to the classifier's classes, then the screen's ``columns``."""
    blast_like = screen_probs[:, list(columns)]
    return torch.cat([(1 - blast_like.sum(dim=1, keepdim=True)) * probs, blast_like], dim=1)
