"""The few-shot benchmark's grouping of a laboratory's copies of one cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.few_shot import copy_groups


def _noise(path: Path, seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_a_copy_of_an_earlier_cell_joins_its_group_wherever_it_lies(tmp_path: Path) -> None:
    first, second, third = (_noise(tmp_path / f"{i}.png", i) for i in range(3))
    again = tmp_path / "3.png"
    again.write_bytes(first.read_bytes())
    # Unrelated embeddings: only the pixels can tell that the fourth file is the first again.
    groups = copy_groups([first, second, third, again], torch.eye(4))
    assert groups == [0, 1, 2, 0]
