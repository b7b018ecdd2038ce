"""Frozen-backbone embeddings of an image-folder split, cached as safetensors."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from vision.data import Sample
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing

Progress = Callable[[str], None]


# no_grad, not inference_mode: the features later feed an autograd-tracked head fit.
@torch.no_grad()
def extract_features(
    model: EfficientNetLite, samples: Sequence[Sample], preprocess: Preprocessing,
    progress: Progress, batch_size: int = 16,
    view: Callable[[Image.Image, int], Image.Image] | None = None,
) -> torch.Tensor:
    """Embeddings (N x D) of ``samples``, each image first turned into ``view(image, index)``
    where given."""
    model = model.eval().to(memory_format=torch.channels_last)
    chunks = []
    started = time.monotonic()
    for start in range(0, len(samples), batch_size):
        images = []
        for index, sample in enumerate(samples[start:start + batch_size], start=start):
            with Image.open(sample.path) as image:
                rgb = image.convert("RGB")
                images.append(view(rgb, index) if view else rgb)
        batch = preprocess.batch(images).contiguous(memory_format=torch.channels_last)
        chunks.append(model.features(batch))
        done = min(start + batch_size, len(samples))
        if done == len(samples) or (start // batch_size) % 50 == 0:
            rate = done / max(time.monotonic() - started, 1e-6)
            eta = (len(samples) - done) / rate
            progress(f"  features {done}/{len(samples)} ({rate:.0f} img/s, ETA {eta:.0f} s)")
    return torch.cat(chunks)


def cached_features(
    cache: Path, model: EfficientNetLite, samples: Sequence[Sample], preprocess: Preprocessing,
    progress: Progress,
) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.tensor([s.label for s in samples])
    if cache.exists():
        stored = load_file(str(cache))
        if torch.equal(stored["labels"], labels):
            return stored["features"], labels
    features = extract_features(model, samples, preprocess, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"features": features.contiguous(), "labels": labels}, str(cache))
    return features, labels
