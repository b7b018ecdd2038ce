"""A cell's image framed tighter or wider, as a misread scale frames it on the analysis path.

The path frames every white cell at PBC's physical framing from the scale it measured in the
photo. That reading is 20% or more off for about a third of tightly cropped cells and a tenth of
those cropped at PBC's framing (BENCHMARKS.md), so the cell fills more or less of the frame than
in any PBC image; an adaptation can learn such views beside the cell as framed
(``AdaptConfig.zoom``, ``hematovision adapt --zoom``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from vision.field.scale import background_colour


def padding_colour(image: Image.Image) -> tuple[int, int, int]:
    """The image's background as 8-bit RGB, as the path measures it (``background_colour``)."""
    red, green, blue = (int(v) for v in background_colour(np.asarray(image.convert("RGB"))))
    return red, green, blue


def zoomed(image: Image.Image, factor: float) -> Image.Image:
    """``image`` with its centre ``factor`` times larger in the frame: above 1, the centred
    1/``factor`` of each side; below 1, the image centred on a canvas 1/``factor`` as wide,
    painted with its background (as the path pads a cell cropped near the photo's edge)."""
    width, height = image.size
    if factor >= 1:
        inner_width, inner_height = width / factor, height / factor
        left, top = (width - inner_width) / 2, (height - inner_height) / 2
        return image.crop((round(left), round(top), round(left + inner_width),
                           round(top + inner_height)))
    canvas = Image.new("RGB", (round(width / factor), round(height / factor)),
                       padding_colour(image))
    canvas.paste(image.convert("RGB"), ((canvas.width - width) // 2, (canvas.height - height) // 2))
    return canvas


def zoom_factors(count: int, widest: float, seed: int) -> list[float]:
    """``count`` factors drawn log-uniformly between 1/``widest`` and ``widest``."""
    generator = torch.Generator().manual_seed(seed)
    spread = math.log(widest)
    draws = torch.rand(count, generator=generator, dtype=torch.float64) * 2 - 1
    return [math.exp(spread * float(u)) for u in draws]
