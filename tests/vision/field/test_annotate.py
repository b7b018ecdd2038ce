"""The annotated picture: a legend of what it shows, and flags that say why."""

from __future__ import annotations

from vision.field.annotate import legend_keys
from vision.field.results import Analysis, Cell
from vision.model.classifier import LabelScore


def _cell(kind: str, label: str | None = None) -> Cell:
    top3 = (LabelScore(label, 0.9),) if label else ()
    return Cell(kind, (0, 0, 10, 10), False, label, 0.9 if label else None, top3)


def _analysis(cells: list[Cell]) -> Analysis:
    return Analysis("field", 100, 100, cells, [], rbc_count=0, platelet_count=0, quality=None,
                    model="m1")


def test_the_legend_lists_only_the_classes_present_in_clinical_order() -> None:
    analysis = _analysis([_cell("wbc", "monocyte"), _cell("wbc", "blast"),
                          _cell("wbc", "neutrophil"), _cell("rbc")])
    assert legend_keys(analysis) == ["blast", "neutrophil", "monocyte", "rbc"]


def test_a_close_up_without_red_cells_or_platelets_leaves_them_out_of_the_legend() -> None:
    assert legend_keys(_analysis([_cell("cell", "eosinophil")])) == ["eosinophil"]
    assert legend_keys(_analysis([_cell("wbc", "lymphocyte"), _cell("platelet")])) == [
        "lymphocyte", "platelet"]
