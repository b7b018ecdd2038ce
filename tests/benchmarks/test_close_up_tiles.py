"""How a close-up tile's answer is scored: its white cells found at IoU 0.5, a cell it holds
less than half of neither asked for nor held against the answer."""

from __future__ import annotations

from PIL import Image

from benchmarks.close_up_tiles import Score, Tile, score_tile
from vision.field.results import Analysis, Cell

WHOLE = (60, 60, 180, 180)
CUT = (0, 220, 40, 256)  # the part of a neighbour the tile holds


def _answer(*boxes: tuple[int, int, int, int]) -> Analysis:
    cells = [Cell("wbc", box, False, "neutrophil", 0.99) for box in boxes]
    return Analysis("field", 256, 256, cells, [], 0, None, None, "test")


def _tile() -> Tile:
    return Tile(Image.new("RGB", (256, 256), "white"), [WHOLE], "test", cut=[CUT])


def test_the_white_cell_boxed_is_found_and_a_neighbour_cut_by_the_edge_is_not_held_against_it(
        ) -> None:
    score = Score()
    score_tile(score, _tile(), _answer((62, 58, 178, 184), CUT))
    row = score.row()
    assert (row["recall"], row["precision"]) == (1.0, 1.0)


def test_a_cell_answered_where_there_is_none_is_a_false_one() -> None:
    score = Score()
    score_tile(score, _tile(), _answer((62, 58, 178, 184), (200, 0, 256, 50)))
    assert score.row()["precision"] == 0.5


def test_a_box_around_the_nucleus_alone_is_not_the_cell() -> None:
    score = Score()
    score_tile(score, _tile(), _answer((100, 100, 140, 140)))
    row = score.row()
    assert row["recall"] == 0.0 and row["median_iou"] < 0.5
