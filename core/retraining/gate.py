"""The promotion gate: a candidate replaces the active model only if it is not worse.

Not worse on four counts, each on the same cells for both models: the base test set named right,
overall and per class; the share of those cells the model flags for review itself (a model that
names as many right but flags every cell would bury the technicians in reviews); and, where the
laboratory has them, its experts' held-out cells, named right and flagged. What is better and
what is worse are both said in plain words, for the admin who decides on a kept candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vision.labels import display_name
from vision.training.metrics import Report


@dataclass(frozen=True)
class HeldOut:
    """A model's answers on a laboratory's held-out expert cells."""

    right: int
    flagged: int
    of: int


@dataclass(frozen=True)
class Scorecard:
    """One model's figures on the gate's cells."""

    test: Report
    flagged: float  # share of the test cells the model flags for review itself
    held_out: HeldOut | None = None


@dataclass(frozen=True)
class Margins:
    overall: float  # accuracy, as a share
    per_class: float  # each class's recall, as a share
    flagged: float  # share of the cells flagged


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str]  # what is worse beyond its margin, in plain words
    candidate_accuracy: float
    baseline_accuracy: float
    recall_changes: dict[str, float] = field(default_factory=dict)
    better: list[str] = field(default_factory=list)
    candidate_flagged: float | None = None
    baseline_flagged: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _points(share: float) -> str:
    return f"{100 * share:.1f} point{'' if round(100 * share, 1) == 1 else 's'}"


def decide(candidate: Scorecard, active: Scorecard, margins: Margins) -> GateDecision:
    """Compare two models on the same cells; every criterion failed becomes a reason."""
    reasons: list[str] = []
    better: list[str] = []
    new, old = candidate.test, active.test
    named = (f"names {new.accuracy:.2%} of the {new.n} base test cells right, against "
             f"{old.accuracy:.2%} for the active model")
    if new.accuracy < old.accuracy - margins.overall:
        reasons.append(f"{named} (at most {_points(margins.overall)} less allowed)")
    elif new.accuracy > old.accuracy:
        better.append(named)
    changes = {}
    for name, metrics in new.per_class.items():
        before = old.per_class[name]
        if before.support == 0:
            continue
        changes[name] = round(metrics.recall - before.recall, 5)
        found = (f"finds {metrics.recall:.1%} of the {display_name(name).lower()}s, against "
                 f"{before.recall:.1%}")
        if metrics.recall < before.recall - margins.per_class:
            reasons.append(f"{found} (at most {_points(margins.per_class)} less allowed)")
    flags = (f"flags {candidate.flagged:.1%} of the base test cells for review, against "
             f"{active.flagged:.1%}")
    if candidate.flagged > active.flagged + margins.flagged:
        reasons.append(f"{flags} (at most {_points(margins.flagged)} more allowed)")
    elif candidate.flagged < active.flagged:
        better.append(flags)
    if candidate.held_out is not None and active.held_out is not None:
        mine, theirs = candidate.held_out, active.held_out
        right = (f"names {mine.right} of the laboratory's {mine.of} held-out expert cells "
                 f"right, against {theirs.right}")
        if mine.right < theirs.right:
            reasons.append(right)
        elif mine.right > theirs.right:
            better.append(right)
        flagged = f"flags {mine.flagged} of those {mine.of} cells, against {theirs.flagged}"
        if mine.flagged > theirs.flagged + margins.flagged * mine.of:
            reasons.append(flagged)
        elif mine.flagged < theirs.flagged:
            better.append(flagged)
    return GateDecision(not reasons, reasons, new.accuracy, old.accuracy, changes, better,
                        candidate.flagged, active.flagged)
