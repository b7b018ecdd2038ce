"""Image-folder data sets (torchvision ImageFolder layout: ``<root>/<class>/<file>``)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


class UnknownClassError(ValueError):
    pass


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


def index_image_folder(root: Path, classes: Sequence[str]) -> list[Sample]:
    """List every image under ``root``, matching folder names to ``classes`` case-insensitively."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    lookup = {name.lower(): index for index, name in enumerate(classes)}
    samples: list[Sample] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.lower() not in lookup:
            raise UnknownClassError(
                f"folder {folder.name!r} in {root} is not a known label "
                f"(known: {', '.join(classes)})"
            )
        label = lookup[folder.name.lower()]
        samples.extend(
            Sample(path, label) for path in sorted(folder.iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        )
    return samples


def subsample(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most ``limit`` of the samples, the same ones for the same seed, in path order."""
    if limit is None or limit >= len(samples):
        return samples
    return sorted(random.Random(seed).sample(samples, limit), key=lambda s: s.path)


def manifest_hash(samples: Sequence[Sample], root: Path) -> str:
    """A digest of which files carry which label: two runs on the same data share it."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f"{sample.path.relative_to(root)}\t{sample.label}\n".encode())
    return digest.hexdigest()
