"""Scoring detections against BCCD's annotation, which misses some red cells."""

from __future__ import annotations

import numpy as np

from lab.bccd import count_in_boxes, judge_centres, score_centres


def test_a_centre_in_a_box_is_true_once_and_unboxed_stain_is_unknown() -> None:
    unboxed = np.zeros((100, 200), bool)
    unboxed[60:100, 150:200] = True  # a red cell the annotation missed
    boxes = [(0, 0, 40, 40), (50, 0, 90, 40)]
    centres = [(20.0, 20.0), (24.0, 18.0),  # one cell found twice: the second is false
               (70.0, 20.0),  # the other boxed cell
               (170.0, 80.0),  # on the unboxed cell: unknown
               (120.0, 80.0)]  # on the background: false
    assert score_centres(centres, boxes, unboxed) == (2, 2, 1)


def test_the_count_where_bccd_looked_leaves_out_cells_outside_every_box() -> None:
    boxes = [(0, 0, 40, 40), (50, 0, 90, 40)]
    centres = [(20.0, 20.0), (24.0, 18.0), (170.0, 80.0)]  # one cell twice, one unboxed
    assert count_in_boxes(centres, boxes) == 2


def test_each_detection_gets_its_verdict_in_order() -> None:
    unboxed = np.zeros((100, 200), bool)
    unboxed[60:100, 150:200] = True
    centres = [(24.0, 18.0), (20.0, 20.0), (170.0, 80.0), (120.0, 80.0)]
    # The centre nearer the box's middle takes the box; the other one in it is false.
    assert judge_centres(centres, [(0, 0, 40, 40)], unboxed) == ["false", "true", "unknown",
                                                                 "false"]
