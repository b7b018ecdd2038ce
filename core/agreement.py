"""A laboratory's agreement with the bot: the share of expert-reviewed cells whose first answer
the expert kept, overall, per week of review, per model version and per class."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from vision.field.results import CLINICAL_ORDER


@dataclass(frozen=True)
class ReviewedAnswer:
    """One cell the bot answered and an expert of the laboratory then reviewed."""

    label: str  # the bot's first answer
    expert_label: str
    confidence: float
    flagged: bool  # by the model itself
    version: str  # the model version that answered
    reviewed_at: datetime  # the first review

    @property
    def kept(self) -> bool:
        return self.label == self.expert_label


@dataclass(frozen=True)
class Agreement:
    reviewed: int
    kept: int

    @property
    def share(self) -> float:
        return self.kept / self.reviewed if self.reviewed else 0.0

    def text(self) -> str:
        return f"{self.share:.0%} of {self.reviewed}" if self.reviewed else "none reviewed"


def agreement(answers: Iterable[ReviewedAnswer]) -> Agreement:
    listed = list(answers)
    return Agreement(len(listed), sum(a.kept for a in listed))


def week_of(moment: datetime) -> date:
    """The Monday of the ISO week ``moment`` falls in."""
    day = moment.date()
    return day - timedelta(days=day.weekday())


def _grouped(answers: Sequence[ReviewedAnswer],
             key: Callable[[ReviewedAnswer], str]) -> dict[str, Agreement]:
    groups: dict[str, list[ReviewedAnswer]] = defaultdict(list)
    for answer in answers:
        groups[key(answer)].append(answer)
    return {name: agreement(members) for name, members in groups.items()}


@dataclass(frozen=True)
class AgreementReport:
    overall: Agreement
    weeks: list[tuple[date, Agreement]]  # oldest first
    versions: dict[str, Agreement]  # in the order each version was first reviewed
    classes: list[tuple[str, Agreement]]  # per expert label, in clinical order

    @classmethod
    def of(cls, answers: Sequence[ReviewedAnswer]) -> AgreementReport:
        ordered = sorted(answers, key=lambda a: a.reviewed_at)
        weeks = _grouped(ordered, lambda a: week_of(a.reviewed_at).isoformat())
        classes = _grouped(ordered, lambda a: a.expert_label)
        order = [c for c in CLINICAL_ORDER if c in classes] + sorted(
            set(classes) - set(CLINICAL_ORDER))
        return cls(agreement(ordered),
                   [(date.fromisoformat(week), value) for week, value in weeks.items()],
                   _grouped(ordered, lambda a: a.version),
                   [(label, classes[label]) for label in order])
