"""The robustness benchmark: the test split under corruptions that imitate other labs and phones.

Each corruption is deterministic (fixed severity, fixed seed) so numbers compare across models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vision.training.augment import (
    affine,
    colour,
    gaussian_blur,
    hed_jitter,
    jpeg_artefacts,
    low_resolution,
)

Corruption = Callable[[torch.Tensor], torch.Tensor]


def _each(n: int, *values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).expand(n, len(values))


def _per_image(n: int, value: float) -> torch.Tensor:
    return torch.full((n,), value)


@dataclass(frozen=True)
class CorruptionSpec:
    name: str
    description: str
    apply: Corruption


def _noise(x: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (x + torch.randn(x.shape, generator=generator) * 0.04).clamp(0, 1)


def _tint(x: torch.Tensor) -> torch.Tensor:
    tint = torch.tensor([1.0, 0.92, 0.80])[None, :, None, None]  # yellowish lamp background
    return (x * 0.85 + tint * 0.15).clamp(0, 1)


CORRUPTIONS: tuple[CorruptionSpec, ...] = (
    CorruptionSpec("stain_strong_haematoxylin",
                   "haematoxylin x1.2, eosin x0.85 (HED space): a darker, bluer stain",
                   lambda x: hed_jitter(x, _each(len(x), 1.2, 0.85, 1.0), _each(len(x), 0, 0, 0))),
    CorruptionSpec("stain_pale",
                   "haematoxylin x0.8, eosin x1.15 (HED space): a paler, pinker stain",
                   lambda x: hed_jitter(x, _each(len(x), 0.8, 1.15, 1.0), _each(len(x), 0, 0, 0))),
    CorruptionSpec("white_balance_warm", "camera white balance: R x1.12, B x0.88",
                   lambda x: colour(x, _each(len(x), 1.12, 1.0, 0.88), *(
                       _per_image(len(x), 1.0) for _ in range(4)))),
    CorruptionSpec("white_balance_cool", "camera white balance: R x0.88, B x1.12",
                   lambda x: colour(x, _each(len(x), 0.88, 1.0, 1.12), *(
                       _per_image(len(x), 1.0) for _ in range(4)))),
    CorruptionSpec("background_tint", "15% blend towards a yellow lamp tint", _tint),
    CorruptionSpec("underexposed", "brightness x0.75, gamma 1.2",
                   lambda x: colour(x, _each(len(x), 1, 1, 1), _per_image(len(x), 0.75),
                                    _per_image(len(x), 1.0), _per_image(len(x), 1.0),
                                    _per_image(len(x), 1.2))),
    # Scaled with the view, so a model served at a larger crop sees the same optical blur.
    CorruptionSpec("defocus", "Gaussian blur, sigma 1.5 px at 224 px",
                   lambda x: gaussian_blur(x, _per_image(len(x), 1.5 * x.shape[-1] / 224))),
    CorruptionSpec("jpeg_q30", "JPEG re-encoding at quality 30", lambda x: jpeg_artefacts(x, 30)),
    CorruptionSpec("low_resolution", "downscaled to 40% and back up (a distant phone)",
                   lambda x: low_resolution(x, 0.4)),
    CorruptionSpec("sensor_noise", "additive Gaussian noise, sigma 0.04", _noise),
    CorruptionSpec("rotated_flipped", "rotated 37 degrees and mirrored",
                   lambda x: affine(x, _per_image(len(x), math.radians(37)),
                                    _per_image(len(x), 1.0), torch.zeros(len(x), 2),
                                    torch.ones(len(x), dtype=torch.bool))),
    CorruptionSpec("zoom_out", "cell 20% smaller in the frame",
                   lambda x: affine(x, _per_image(len(x), 0.0), _per_image(len(x), 0.8),
                                    torch.zeros(len(x), 2), torch.zeros(len(x), dtype=torch.bool))),
)
