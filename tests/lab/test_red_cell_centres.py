"""Training the red-cell centre network: targets, the ignored unboxed cells, a falling loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.bccd import Annotated, read_boxes
from lab.red_cell_centres import (
    CentreTrainingConfig,
    Example,
    augment,
    eyepiece,
    make_example,
    targets,
    train_centres,
)
from tests.conftest import FIXTURES
from vision.field.centre_net import NET_SCALE, STRIDE, CentreNet
from vision.field.detect import DetectorParams
from vision.model.imagenet import load_imagenet

FIELDS = ["BloodImage_00007", "BloodImage_00015"]


def _field(name: str) -> Annotated:
    bccd = FIXTURES / "bccd"
    return Annotated(bccd / f"{name}.jpg", read_boxes(bccd / f"{name}.xml"))


def _example(boxes: list[tuple[int, int, int, int]], unboxed: np.ndarray) -> Example:
    return Example(np.full((*unboxed.shape, 3), 230.0, np.float32),
                   np.array(boxes, np.float32).reshape(-1, 4), unboxed)


def test_each_boxed_cell_is_a_centre_with_its_size() -> None:
    heat, weight, sizes, centre = targets(_example([(40, 16, 80, 56)], np.zeros((96, 128), bool)),
                                          sigma=0.8, ignore_share=0.5)
    assert heat.shape == (12, 16) and int(centre.sum()) == 1
    row, col = np.argwhere(centre)[0]
    assert ((col + 0.5) * STRIDE, (row + 0.5) * STRIDE) == (60.0, 36.0)
    assert heat[row, col] == 1.0 and heat[row, col + 1] < 1.0
    assert np.allclose(np.exp(sizes[:, row, col]) * STRIDE, [40, 40])
    assert weight.min() == 1.0


def test_unboxed_red_cells_are_ignored_not_taught_as_background() -> None:
    unboxed = np.zeros((96, 128), bool)
    unboxed[48:96, 0:32] = True  # a red cell BCCD did not box
    _, weight, _, _ = targets(_example([(80, 0, 120, 40)], unboxed), 0.8, 0.5)
    assert (weight[6:12, 0:4] == 0).all()
    assert (weight[0:6, :] == 1).all()


def test_a_real_field_is_read_at_the_working_scale_with_its_boxes() -> None:
    field = _field(FIELDS[0])
    example = make_example(field, DetectorParams())
    height, width = example.balanced.shape[:2]
    factor = width / 640 * NET_SCALE
    # BCCD's red cells are about 100 px across: the working scale (51 px) is about half.
    assert 0.35 < factor < 0.65 and abs(height - 480 * factor) <= 1
    assert len(example.boxes) == len(field.boxes["rbc"])
    x0, y0, x1, y1 = field.boxes["rbc"][0]
    assert example.boxes[0].tolist() == pytest.approx([v * factor for v in (x0, y0, x1, y1)],
                                                      abs=0.01)


def test_augmentation_moves_the_boxes_with_the_image() -> None:
    example = make_example(_field(FIELDS[0]), DetectorParams())
    for seed in range(4):
        moved = augment(example, np.random.default_rng(seed), jitter=0.15)
        height, width = moved.unboxed_red.shape
        assert moved.balanced.shape[:2] == (height, width)
        assert (moved.boxes[:, [0, 2]] <= width + 1).all()
        assert (moved.boxes[:, [1, 3]] <= height + 1).all()
        assert (moved.boxes >= -1).all()


def test_training_on_two_real_fields_lowers_the_loss(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    examples = [make_example(_field(name), DetectorParams()) for name in FIELDS]
    net = CentreNet(load_imagenet())
    config = CentreTrainingConfig(epochs=4, batch_size=2, lr=2e-3, scale_jitter=0.0)
    lines: list[str] = []
    records = train_centres(net, examples, config, tmp_path / "checkpoint.pt", lines.append)
    assert records[-1].loss < records[0].loss
    assert all(r.minutes is not None and r.minutes > 0 for r in records)
    assert lines[-1].startswith("epoch 4/4")
    # A rerun resumes after the last finished epoch instead of starting again.
    again = train_centres(net, examples, config, tmp_path / "checkpoint.pt", lines.append)
    assert again == records and "resumed after epoch 4" in lines


def test_through_the_eyepiece_hidden_cells_lose_their_box_and_their_sliver_is_ignored() -> None:
    unboxed = np.zeros((100, 100), bool)
    field = Example(np.full((100, 100, 3), 230.0, np.float32),
                    np.array([[40, 40, 60, 60], [80, 0, 100, 20]], np.float32), unboxed)
    seen = eyepiece(field, centre=(50.0, 50.0), radius=45.0)
    assert seen.boxes.tolist() == [[40, 40, 60, 60]]  # the corner cell's centre is hidden
    assert seen.balanced[0, 0].tolist() == [8.0, 8.0, 8.0]  # black outside, as balanced
    assert seen.balanced[50, 50].tolist() == [230.0, 230.0, 230.0]
    assert seen.unboxed_red[19, 81]  # the hidden cell's visible part: neither cell nor background
    assert not seen.unboxed_red[0, 99]  # its part outside the circle is plain black
