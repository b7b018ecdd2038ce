"""How many cells one forward pass takes, by device."""

import torch

from vision.model.classifier import chunk_size_for


def test_a_cpu_runs_small_chunks_and_a_gpu_large_ones() -> None:
    assert chunk_size_for(torch.device("cpu")) == 8
    assert chunk_size_for(torch.device("cuda")) == 256
