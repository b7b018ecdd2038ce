"""The centre network's plumbing: input padding, peak decoding, and integrity-checked files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vision.field.centre_net import (
    STRIDE,
    CentreNet,
    decode,
    load_centre_net,
    save_centre_net,
    to_input,
)
from vision.model.artifact import ModelIntegrityError
from vision.model.efficientnet_lite import EfficientNetLite


def test_input_is_normalised_and_padded_to_a_multiple_of_16_with_white() -> None:
    field = np.full((100, 150, 3), 230.0, np.float32)
    field[0, 0] = 0.0
    tensor = to_input(field)
    assert tensor.shape == (1, 3, 112, 160)
    assert tensor[0, :, 0, 0].tolist() == [-1.0, -1.0, -1.0]
    assert torch.allclose(tensor[0, :, 111, 159], torch.full((3,), 230 / 127.5 - 1))


def test_the_network_gives_a_heatmap_and_sizes_at_stride_8() -> None:
    net = CentreNet(EfficientNetLite()).eval()
    with torch.inference_mode():
        heatmap, size = net(torch.zeros(1, 3, 240, 320))
    assert heatmap.shape == (1, 1, 30, 40) and size.shape == (1, 2, 30, 40)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_each_local_maximum_above_the_threshold_is_one_cell_with_its_size() -> None:
    heatmap = torch.full((1, 6, 8), _logit(0.01))
    heatmap[0, 1, 2] = _logit(0.9)
    heatmap[0, 1, 3] = _logit(0.6)  # the shoulder of the same peak: not a second cell
    heatmap[0, 4, 6] = _logit(0.7)
    heatmap[0, 4, 0] = _logit(0.2)  # below the threshold
    size = torch.zeros(2, 6, 8)
    size[:, 1, 2] = math.log(5.0)
    centres = decode(heatmap, size, threshold=0.5, shape=(48, 64))
    assert [(c.x, c.y) for c in centres] == [(2.5 * STRIDE, 1.5 * STRIDE),
                                             (6.5 * STRIDE, 4.5 * STRIDE)]
    assert centres[0].width == pytest.approx(5 * STRIDE)
    assert centres[0].score == pytest.approx(0.9)


def test_peaks_in_the_padding_are_dropped() -> None:
    heatmap = torch.full((1, 2, 4), _logit(0.01))
    heatmap[0, 0, 3] = _logit(0.9)
    assert decode(heatmap, torch.zeros(2, 2, 4), threshold=0.5, shape=(16, 24)) == []


def test_a_saved_network_loads_back_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    net = CentreNet(EfficientNetLite()).eval()
    save_centre_net(net, tmp_path / "rbc", {"version": "t", "threshold": 0.5})
    loaded, card = load_centre_net(tmp_path / "rbc")
    assert card["threshold"] == 0.5
    assert torch.equal(loaded.heatmap.bias, net.heatmap.bias)
    weights = tmp_path / "rbc.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_centre_net(tmp_path / "rbc")
