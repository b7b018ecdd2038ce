"""The promotion gate: a candidate replaces the active model only if it is not worse."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vision.training.metrics import Report


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str]
    candidate_accuracy: float
    baseline_accuracy: float
    recall_changes: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(candidate: Report, baseline: Report, overall_margin: float,
           class_margin: float) -> GateDecision:
    """Compare two reports on the same images; every failed criterion becomes a reason."""
    reasons = []
    if candidate.accuracy < baseline.accuracy - overall_margin:
        reasons.append(f"accuracy {candidate.accuracy:.4f} < active {baseline.accuracy:.4f} "
                       f"- {overall_margin}")
    changes = {}
    for name, metrics in candidate.per_class.items():
        before = baseline.per_class[name]
        if before.support == 0:
            continue
        changes[name] = round(metrics.recall - before.recall, 5)
        if metrics.recall < before.recall - class_margin:
            reasons.append(f"{name} recall {metrics.recall:.3f} < active {before.recall:.3f} "
                           f"- {class_margin}")
    return GateDecision(not reasons, reasons, candidate.accuracy, baseline.accuracy, changes)
