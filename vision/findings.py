"""What a photo's, an album's or a case's cell labels tell a laboratory, in the order it must be
told: blasts first, then the differential, with smudge cells counted beside it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vision.field.results import CLASSIFIED_KINDS, Cell, DifferentialRow, in_clinical_order
from vision.labels import BLAST_LIKE, NOT_RECOGNISED, SMUDGE, display_name

# Neither white cells nor counted among them (erythroblasts are reported per 100 white cells,
# platelets apart).
NOT_WHITE_CELLS = frozenset({"erythroblast", "platelet"})


@dataclass(frozen=True)
class Findings:
    differential: dict[str, int]  # every named cell but smudge cells, by label
    smudge: int

    @property
    def white_cells(self) -> int:
        """The white cells the percentages are of: blasts included, erythroblasts and platelets
        not."""
        return sum(n for label, n in self.differential.items() if label not in NOT_WHITE_CELLS)

    @property
    def blasts(self) -> int:
        return sum(n for label, n in self.differential.items() if label in BLAST_LIKE)

    def percent(self, label: str) -> float:
        """Of every cell in the differential, as the differential has always been reported."""
        return 100 * self.differential.get(label, 0) / max(1, sum(self.differential.values()))

    def alert(self) -> str | None:
        """The line a result opens with when it holds a blast, else None."""
        if not self.blasts:
            return None
        return (f"🚨 Blasts seen: {self.blasts} of {self.white_cells} white cells — urgent "
                "review by a haematologist")

    def rows(self) -> list[tuple[str, int, float]]:
        """The differential in clinical order: label, count, percent."""
        return [(label, count, self.percent(label))
                for label, count in in_clinical_order(self.differential)]

    def smudge_line(self) -> str | None:
        return f"Smudge cells: {self.smudge} (not in the differential)" if self.smudge else None

    def summary(self) -> str:
        """One line: each label's count and percentage, in clinical order."""
        if not self.differential:
            return "no white cells"
        return ", ".join(f"{display_name(label)} {count} ({percent:.0f}%)"
                         for label, count, percent in self.rows())


def findings(labels: Iterable[str | None]) -> Findings:
    """The findings of these cells' labels (an expert's where given: pass the final label)."""
    counts: dict[str, int] = {}
    for label in labels:
        if label and label != NOT_RECOGNISED:
            counts[label] = counts.get(label, 0) + 1
    return of_counts(counts)


def of_counts(counts: Mapping[str, int]) -> Findings:
    """The findings of cells already counted by label."""
    return Findings({label: count for label, count in counts.items()
                     if label not in (SMUDGE, NOT_RECOGNISED) and count},
                    counts.get(SMUDGE, 0))


def differential(cells: Iterable[Cell]) -> list[DifferentialRow]:
    """The classified cells by label in clinical order (smudge cells are counted apart)."""
    found = findings(c.label for c in cells if c.kind in CLASSIFIED_KINDS)
    return [DifferentialRow(label, count, round(percent, 1))
            for label, count, percent in found.rows()]
