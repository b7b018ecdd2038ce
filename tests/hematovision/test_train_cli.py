"""``hematovision train``: where the epochs run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import fixture_image_folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_asking_for_cuda_without_one_is_a_clear_error(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        fixture_image_folder(tmp_path / "data" / split)
    result = subprocess.run(
        [sys.executable, "-m", "hematovision", "train", "--data", str(tmp_path / "data"),
         "--out", str(tmp_path / "run"), "--device", "cuda"],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
