"""Decode and resize a split once into a uint8 tensor cache, so epochs never touch JPEGs again.

On two cores JPEG decoding plus resizing costs as much as a forward pass at low resolution; the
cache makes every later epoch pay only for the network.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from vision.data import Sample
from vision.model.preprocess import square_crop
from vision.training.features import Progress


def _key(samples: Sequence[Sample], size: int) -> str:
    digest = hashlib.sha256(str(size).encode())
    for sample in samples:
        digest.update(f"{sample.path}:{sample.label}\n".encode())
    return digest.hexdigest()[:16]


def cached_split(
    samples: Sequence[Sample], size: int, cache_dir: Path, name: str, progress: Progress
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N x 3 x size x size uint8, labels N) for ``samples``, built once and reused."""
    path = cache_dir / f"{name}-{size}-{_key(samples, size)}.safetensors"
    if path.exists():
        stored = load_file(str(path))
        return stored["images"], stored["labels"]
    images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
    started = time.monotonic()

    def decode(sample: Sample) -> np.ndarray:
        with Image.open(sample.path) as image:
            return np.asarray(square_crop(image, size))

    # Pillow releases the GIL while decoding and resizing, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        decoded = pool.map(decode, samples)
        for index, array in enumerate(decoded):
            images[index] = torch.from_numpy(array.copy()).permute(2, 0, 1)
            if (index + 1) % 2000 == 0 or index + 1 == len(samples):
                rate = (index + 1) / (time.monotonic() - started)
                progress(f"  cache {name}@{size}: {index + 1}/{len(samples)} ({rate:.0f} img/s)")
    labels = torch.tensor([s.label for s in samples])
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_file({"images": images, "labels": labels}, str(path))
    return images, labels
