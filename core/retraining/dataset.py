"""The retraining data: expert-labelled cells plus a replay sample of the base data set."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from core.reviews import ExpertExample
from core.storage import ImageStore
from core.storage.blobs import BlobError
from vision.data import Sample, index_image_folder
from vision.field.analyse import framed_cell
from vision.field.detect import box_centre
from vision.model.preprocess import square_crop
from vision.training.cache import cached_split
from vision.training.features import Progress

T = TypeVar("T")


def _sample_each_class(root: Path, classes: Sequence[str], how_many: Callable[[int], int],
                       seed: int) -> list[Sample]:
    """``how_many(n)`` of each class's n images, the same ones for the same seed."""
    samples = index_image_folder(root, classes)
    rng = random.Random(seed)
    chosen: list[Sample] = []
    for label in range(len(classes)):
        of_class = [s for s in samples if s.label == label]
        chosen += rng.sample(of_class, min(len(of_class), how_many(len(of_class))))
    return sorted(chosen, key=lambda s: s.path)


def per_class_sample(root: Path, classes: Sequence[str], per_class: int | None,
                     seed: int) -> list[Sample]:
    """Up to ``per_class`` images of each class, the same ones for the same seed (labels are
    indices into ``classes``, the model's; the data set may hold only some of them)."""
    if per_class is None:
        return index_image_folder(root, classes)
    return _sample_each_class(root, classes, lambda _n: per_class, seed)


def proportional_sample(root: Path, classes: Sequence[str], fraction: float,
                        seed: int) -> list[Sample]:
    """About ``fraction`` of each class's images, so the classes keep the data set's proportions."""
    return _sample_each_class(root, classes, lambda n: max(1, round(fraction * n)), seed)


# Every fourth expert cell, oldest first, is kept back from learning to judge the candidate.
HOLD_OUT_EVERY = 4


def split_held_out(examples: Sequence[T]) -> tuple[list[T], list[T]]:
    """(cells to learn from, held-out cells): every fourth cell, oldest first, is held out."""
    learn = [e for i, e in enumerate(examples) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
    held = [e for i, e in enumerate(examples) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    return learn, held


def learnable(examples: Sequence[ExpertExample], classes: Sequence[str]) -> list[ExpertExample]:
    """The expert cells whose label the model names: a label it does not know (an abnormal
    class an older model lacks) waits for a model that does."""
    return [e for e in examples if e.label in classes]


def load(samples: Sequence[Sample], cache_dir: Path, name: str, size: int,
         progress: Progress) -> tuple[torch.Tensor, torch.Tensor]:
    return cached_split(samples, size, cache_dir, name, progress)


def expert_crop(image: Image.Image, example: ExpertExample) -> Image.Image:
    """The cell as the classifier saw it (``framed_cell``): a close-up framed as the analysis
    path frames its one cell, a field's cell centred on its box at PBC's framing."""
    return framed_cell(image, None if example.whole_image else box_centre(example.box))


def readable_crops(examples: Sequence[ExpertExample], store: ImageStore,
                   ) -> tuple[list[tuple[ExpertExample, Image.Image]], int]:
    """Each example with its cell as the classifier saw it, leaving out (and counting) those
    whose stored photo is missing or damaged: one lost file must not stop a training run."""
    crops, unreadable = [], 0
    for example in examples:
        try:
            image = store.open(example.image_sha256)
        except (BlobError, OSError):
            unreadable += 1
            continue
        crops.append((example, expert_crop(image, example)))
    return crops, unreadable


def expert_tensors(crops: Sequence[tuple[ExpertExample, Image.Image]], size: int,
                   classes: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The expert cells as ``size`` squares, like the cache of the base data."""
    images = torch.empty((len(crops), 3, size, size), dtype=torch.uint8)
    for index, (_example, crop) in enumerate(crops):
        square = square_crop(crop, size)
        images[index] = torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1)
    labels = torch.tensor([list(classes).index(e.label) for e, _crop in crops], dtype=torch.long)
    return images, labels
