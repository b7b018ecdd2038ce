"""What an analysis found, as plain data: what the bot, cases, reviews and exports read.

Kept apart from the analysis itself so that reading a result never imports the networks
(torch and its libraries cost the bot about 0.8 GB of memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from vision.labels import NOT_RECOGNISED, SMUDGE

if TYPE_CHECKING:
    from vision.field.quality import Quality
    from vision.field.scale import Scale
    from vision.model.classifier import Box, LabelScore

# The usual order of a white-cell differential, abnormal cells beside the normal ones they are
# told from; erythroblasts (NRBC) and platelets are reported after it.
CLINICAL_ORDER = ("blast", "promonocyte", "neutrophil", "lymphocyte", "reactive_lymphocyte",
                  "monocyte", "eosinophil", "basophil", "ig", "plasma_cell", "erythroblast",
                  "platelet", "smudge")
# Why a cell is flagged for review, in plain words (the codes are stored with the cell).
REVIEW_REASONS: dict[str, str] = {
    "possible_blast": "could be a blast",
    "unusual": "unlike the cells it learnt from",
    "unsure": "two classes close",
    "cut_by_edge": "cut by the edge of the photo",
    "not_recognised": "not recognised as a blood cell",
    # The laboratory's trust (``core.trust``): not the model's doubt, the laboratory's measure.
    "to_confirm": "to confirm: not yet measured in this laboratory",
    "below_lab_threshold": "less sure than this laboratory's measured threshold",
}
TRUST_REASONS = ("to_confirm", "below_lab_threshold")


def flagged_by_model(review: bool, reasons: Iterable[str] | None) -> bool:
    """Whether the model itself flagged a cell, the laboratory's trust left out (a flagged cell
    without reasons, stored before they were, counts as the model's)."""
    listed = list(reasons or ())
    return review and (not listed or any(r not in TRUST_REASONS for r in listed))


# The short form the annotated picture has room for.
REVIEW_REASONS_SHORT: dict[str, str] = {
    "possible_blast": "blast?", "unusual": "unusual", "unsure": "two close",
    "cut_by_edge": "cut", "not_recognised": "not a cell?", "to_confirm": "to confirm",
    "below_lab_threshold": "below lab's threshold",
}
# A model's confidence holds only for cells like those it learnt from: beside these flags a
# "100%" would claim a certainty the model does not have there.
CONFIDENCE_WITHHELD = frozenset({"unusual", NOT_RECOGNISED})


def confidence_text(confidence: float | None, reasons: Iterable[str], digits: int = 1) -> str:
    """A cell's confidence as shown to people: "best guess" where a flag says it does not hold,
    never "100%" (a softmax is never certain; 0.9996 reads 99.9%)."""
    if confidence is None or CONFIDENCE_WITHHELD.intersection(reasons):
        return "best guess"
    ceiling = 1 - 10 ** -(digits + 2)
    return f"{100 * min(confidence, ceiling):.{digits}f}%"


def reasons_tally(reasons: Mapping[str, int]) -> str:
    """Flag reasons with their cells, most first, in the short form: "2 unusual, 1 cut"."""
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {REVIEW_REASONS_SHORT.get(reason, reason)}"
                     for reason, count in ordered)


def reasons_in_words(reasons: Iterable[str]) -> list[str]:
    """A flag's reasons as a person reads them; "not recognised" is left out, since the label
    already says it."""
    return [REVIEW_REASONS[r] for r in reasons if r in REVIEW_REASONS and r != NOT_RECOGNISED]
# Cells that carry a label: white cells in a field, the cell of a close-up.
CLASSIFIED_KINDS = ("wbc", "cell")


def platelet_text(count: int | None) -> str:
    """A platelet count as every answer shows it: "not estimated" while it is withheld."""
    return "not estimated" if count is None else str(count)


def in_clinical_order(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Counts in the usual clinical reading order, anything unexpected after."""
    order = [label for label in CLINICAL_ORDER if label in counts]
    order += sorted(set(counts) - set(order))
    return [(label, counts[label]) for label in order]


@dataclass(frozen=True)
class Cell:
    kind: str  # "cell" (a close-up), "wbc", "rbc" or "platelet"
    box: Box  # pixels of the original image
    at_border: bool = False
    label: str | None = None
    confidence: float | None = None
    top3: tuple[LabelScore, ...] = ()
    review: bool = False
    out_of_domain: bool = False  # unlike the training images: the label is less reliable
    reasons: tuple[str, ...] = ()  # why it is flagged (keys of REVIEW_REASONS)
    blast_probability: float = 0.0  # of the blast-like classes together
    reviewed: bool = False  # the label is an expert's (a report's picture, redrawn)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "box": list(self.box), "at_border": self.at_border,
                "label": self.label,
                "confidence": None if self.confidence is None else round(self.confidence, 6),
                "top3": [{"label": s.label, "confidence": round(s.confidence, 6)}
                         for s in self.top3],
                "review": self.review, "out_of_domain": self.out_of_domain,
                "review_reasons": list(self.reasons)}


@dataclass(frozen=True)
class DifferentialRow:
    label: str
    count: int
    percent: float


@dataclass(frozen=True)
class Analysis:
    mode: str  # "cell" or "field"
    width: int
    height: int
    cells: list[Cell]
    differential: list[DifferentialRow]
    rbc_count: int
    # None: not estimated. The platelet detectors measured so far miss or invent too many
    # platelets (BENCHMARKS.md, "Platelets"): a count is withheld until one reaches 0.90
    # recall and precision on two laboratories' boxes.
    platelet_count: int | None
    quality: Quality | None
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    scale: Scale | None = None
    # What found the red cells of a field (a network's version, or the colour rule); a result
    # must say which models made it, and the count depends on this one.
    red_cell_model: str | None = None
    # The network that gave a screened model's blast-like share (``CellClassifier.screen``).
    screen_model: str | None = None

    @property
    def rejected(self) -> bool:
        return self.quality is not None and not self.quality.passed

    @property
    def classified(self) -> list[Cell]:
        return [c for c in self.cells if c.label is not None]

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode, "width": self.width, "height": self.height,
            "model": self.model, "red_cell_model": self.red_cell_model,
            "screen_model": self.screen_model,
            "scale": self.scale.to_dict() if self.scale else None,
            "quality": self.quality.to_dict() if self.quality else None,
            "cells": [c.to_dict() for c in self.cells],
            "differential": [asdict(row) for row in self.differential],
            "wbc_count": sum(1 for c in self.cells if c.kind == "wbc"),
            "smudge_count": sum(1 for c in self.cells if c.label == SMUDGE),
            "rbc_count": self.rbc_count,
            "platelet_count": self.platelet_count,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
        }
