"""Adult reference ranges of the white-cell differential, and where a case's values fall.

The ranges a report prints beside its counts. Source: Bain B.J., Bates I., Laffan M.A. (eds),
Dacie and Lewis Practical Haematology, 12th edition (Elsevier, 2017), chapter 2, normal adults.
A laboratory's own ranges (by age, sex and population) take precedence: the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("Adult reference ranges: Dacie and Lewis Practical Haematology, 12th ed. (2017). "
          "Your laboratory's own ranges take precedence.")


@dataclass(frozen=True)
class Range:
    percent: tuple[float, float]
    absolute: tuple[float, float] | None = None  # x 10^9/L

    def percent_text(self) -> str:
        low, high = self.percent
        return "none" if high == 0 else f"{low:g}-{high:g}"

    def absolute_text(self) -> str:
        if self.absolute is None:
            return ""
        low, high = self.absolute
        return f"{low:g}-{high:g}"


ADULT = {
    "neutrophil": Range((40, 80), (2.0, 7.0)),
    "lymphocyte": Range((20, 40), (1.0, 3.0)),
    "monocyte": Range((2, 10), (0.2, 1.0)),
    "eosinophil": Range((1, 6), (0.02, 0.5)),
    "basophil": Range((0, 2), (0.02, 0.1)),
    # Not seen in a healthy adult's blood: any is outside the range.
    "blast": Range((0, 0), (0.0, 0.0)),
    "promonocyte": Range((0, 0), (0.0, 0.0)),
}


def outside(label: str, percent: float, absolute: float | None = None) -> str:
    """"H" above the adult range, "L" below, "" within it or where no range applies; by the
    absolute count when there is one (a share alone misleads when the total is abnormal)."""
    found = ADULT.get(label)
    if found is None:
        return ""
    value, (low, high) = ((absolute, found.absolute) if absolute is not None
                          and found.absolute is not None else (percent, found.percent))
    if value > high:
        return "H"
    return "L" if value < low else ""
