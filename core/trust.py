"""Trust earned per laboratory: how sure the bot must be before an answer goes unflagged there.

A model cannot tell that it is somewhere new: another laboratory's large lymphocytes come back
"monocyte 95%". So a laboratory starts as an analyser's pre-classification does: every cell
labelled, its top three shown, and every answer *to confirm*, until its experts have reviewed
enough of the serving version's answers to measure how often it is right there. From then on an
answer goes unflagged only from a confidence threshold chosen on those reviewed answers so that
wrong unflagged answers stay at or under ``TARGET_WRONG``.

The threshold is chosen as in conformal risk control with a fixed sequence (Angelopoulos et al.
2021, "Learn then test"): going down the reviewed answers from the most confident, each lower
threshold is accepted only while the finite-sample bound on the wrong share above it,
``(wrong + 1) / (n + 1)``, stays within the target; the first breach ends the walk. With no
wrong answer that bound needs 49 reviewed answers above the threshold to reach 2%, hence
``MIN_REVIEWED``. Only the answers the model did not flag itself count: a flagged answer is
shown flagged whatever the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from vision.field.results import TRUST_REASONS, Analysis

TARGET_WRONG = 0.02
MIN_REVIEWED = math.ceil(1 / TARGET_WRONG) - 1  # 49 agreeing answers bound the wrong share at 2%
TO_CONFIRM, BELOW_MEASURED = TRUST_REASONS


@dataclass(frozen=True)
class ScoredAnswer:
    """One of the serving version's answers in this laboratory, as its expert judged it."""

    confidence: float
    right: bool
    flagged: bool  # by the model itself (unusual, two classes close, could be a blast ...)


@dataclass(frozen=True)
class Trust:
    reviewed: int  # the serving version's answers reviewed here (flagged or not)
    agreeing: int  # of which the expert kept the bot's label
    threshold: float | None  # unflagged from this confidence on; None: everything to confirm
    needed: int  # more agreeing unflagged reviews before a threshold can exist (0: none needed)

    @property
    def measured(self) -> bool:
        return self.threshold is not None

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.reviewed if self.reviewed else None

    def line(self) -> str:
        """The reply's one line on which regime the laboratory is in."""
        return f"{'✅' if self.measured else '🧪'} {self.summary()}"

    def summary(self) -> str:
        if self.threshold is not None:
            return (f"Measured in your laboratory: answers from {self.threshold:.0%} on agreed "
                    f"with your experts (at most {TARGET_WRONG:.0%} wrong, over {self.reviewed} "
                    f"reviewed cells); below that they are marked to confirm.")
        if self.needed:
            # Reviews of answers the model flagged itself do not count: say which do.
            return (f"New to your laboratory: every answer is to confirm until your experts "
                    f"have reviewed {self.needed} more of those marked only \"to confirm\".")
        return (f"Your experts kept {self.agreeing} of {self.reviewed} reviewed answers, too "
                f"few to leave any unconfirmed: every answer is to confirm (/adapt teaches the "
                f"bot your cells).")

    def to_dict(self) -> dict[str, Any]:
        return {"reviewed": self.reviewed, "agreeing": self.agreeing,
                "threshold": self.threshold, "needed": self.needed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trust:
        threshold = data.get("threshold")
        return cls(int(data["reviewed"]), int(data["agreeing"]),
                   None if threshold is None else float(threshold), int(data["needed"]))


NEW_LABORATORY = Trust(reviewed=0, agreeing=0, threshold=None, needed=MIN_REVIEWED)


def measure(answers: Sequence[ScoredAnswer], target: float = TARGET_WRONG) -> Trust:
    """The laboratory's threshold from its reviewed answers (see the module's docstring)."""
    agreeing = sum(a.right for a in answers)
    unflagged = sorted((a for a in answers if not a.flagged), key=lambda a: -a.confidence)
    minimum = math.ceil(1 / target) - 1
    threshold = None
    wrong = 0
    for n, answer in enumerate(unflagged, start=1):
        wrong += not answer.right
        if n < minimum:
            continue
        if (wrong + 1) / (n + 1) > target:
            break
        # Ties: a threshold between equal confidences would accept some and not others.
        if n == len(unflagged) or unflagged[n].confidence < answer.confidence:
            threshold = answer.confidence
    if threshold is not None:
        return Trust(len(answers), agreeing, threshold, 0)
    # How many more agreeing answers the walk needs before the bound can hold at all.
    wrong_top = sum(not a.right for a in unflagged[:minimum])
    needed = max(0, math.ceil((wrong_top + 1) / target - 1) - len(unflagged))
    return Trust(len(answers), agreeing, None, needed if len(answers) < 4 * minimum else 0)


def apply(analysis: Analysis, trust: Trust) -> Analysis:
    """``analysis`` with its labelled cells flagged as the laboratory's trust requires."""
    cells = []
    for cell in analysis.cells:
        if cell.label is None or cell.confidence is None:
            cells.append(cell)
            continue
        reason = TO_CONFIRM if trust.threshold is None \
            else BELOW_MEASURED if cell.confidence < trust.threshold else None
        cells.append(cell if reason is None or reason in cell.reasons
                     else replace(cell, review=True, reasons=(*cell.reasons, reason)))
    return replace(analysis, cells=cells)

