"""TF-Lite preprocessing of the Lite0 weights: bicubic 256, centre crop 224, mean = std = 0.5."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from vision.pixels import rgb


def square_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bicubic) and take the centred square."""
    width, height = image.size
    scale = size / min(width, height)
    resized = rgb(image).resize(
        (max(size, round(width * scale)), max(size, round(height * scale))),
        Image.Resampling.BICUBIC,
    )
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


# Every view keeps the field of view of the Lite0 weights' preprocessing, 224 of 256, whatever
# its resolution: 288 of 329 for a model served at 288 px.
VIEW_FRACTION = 224 / 256


@dataclass(frozen=True)
class Preprocessing:
    resize: int = 256
    crop: int = 224
    mean: float = 0.5
    std: float = 0.5
    interpolation: str = "bicubic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(**data)

    @classmethod
    def for_crop(cls, crop: int) -> Preprocessing:
        """The preprocessing of a model served at ``crop`` px (resize 256 for 224, 329 for 288)."""
        return cls(resize=round(crop / VIEW_FRACTION), crop=crop)

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        # Through the same centred square as the training cache: cropping straight from the
        # resized image can sit a pixel off that view when resize - crop is odd (329 - 288).
        offset = (self.resize - self.crop) // 2
        return square_crop(image, self.resize).crop(
            (offset, offset, offset + self.crop, offset + self.crop))

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """A cropped RGB image as a normalised CHW float tensor."""
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        return (tensor - self.mean) / self.std

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self.to_tensor(self.resize_and_crop(image)) for image in images])
