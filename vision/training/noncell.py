"""Images that are not a blood cell, for measuring false accepts of the rejection step.

Natural photographs shipped with scikit-image (and crops of them), plus generated screenshots,
noise, empty and out-of-focus fields, gradients and patterns. Deterministic.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "chelsea", "coffee", "coins", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "moon", "page", "rocket", "text", "retina",
    "logo", "clock", "immunohistochemistry",
)  # only images bundled in the wheel: nothing here may trigger a download


def _photos() -> list[tuple[str, Image.Image]]:
    from skimage import data

    images = []
    for name in SKIMAGE_PHOTOS:
        array = np.asarray(getattr(data, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.dtype != np.uint8:
            array = (255 * (array - array.min()) / max(float(np.ptp(array)), 1e-9)).astype(np.uint8)
        images.append((name, Image.fromarray(array).convert("RGB")))
    return images


def _screenshot(rng: np.random.Generator, index: int) -> Image.Image:
    image = Image.new("RGB", (360, 640), tuple(int(v) for v in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(image)
    for row in range(12):
        y = 20 + row * 50
        colour = tuple(int(v) for v in rng.integers(0, 120, 3))
        draw.rectangle((12, y, 348, y + 40), outline=colour)
        draw.text((20, y + 12), f"Message {index}-{row}: lorem ipsum dolor", fill=colour)
    return image


def _fields(rng: np.random.Generator) -> list[tuple[str, Image.Image]]:
    out: list[tuple[str, Image.Image]] = []
    for i in range(10):
        out.append((f"uniform_noise_{i}", Image.fromarray(rng.integers(0, 256, (256, 256, 3),
                                                                        dtype=np.uint8))))
        grey = rng.normal(128, 40, (256, 256, 1)).clip(0, 255).astype(np.uint8).repeat(3, 2)
        out.append((f"gaussian_noise_{i}", Image.fromarray(grey)))
        tone = rng.integers(170, 256, 3)
        empty = (np.ones((256, 256, 3)) * tone + rng.normal(0, 3, (256, 256, 3))).clip(0, 255)
        out.append((f"empty_field_{i}", Image.fromarray(empty.astype(np.uint8))))
        out.append((f"screenshot_{i}", _screenshot(rng, i)))
        gradient = np.linspace(0, 255, 256)[None, :, None] * rng.uniform(0.3, 1, (1, 1, 3))
        out.append((f"gradient_{i}", Image.fromarray(np.broadcast_to(
            gradient, (256, 256, 3)).astype(np.uint8))))
        cells = max(4, int(rng.integers(4, 32)))
        board = (np.indices((256, 256)).sum(0) // cells % 2 * 255).astype(np.uint8)
        out.append((f"checkerboard_{i}", Image.fromarray(board).convert("RGB")))
        dark = (rng.normal(20, 8, (256, 256, 3))).clip(0, 255).astype(np.uint8)
        out.append((f"dark_frame_{i}", Image.fromarray(dark)))
    return out


def non_cell_images(seed: int = 0) -> list[tuple[str, Image.Image]]:
    rng = np.random.default_rng(seed)
    images: list[tuple[str, Image.Image]] = []
    for name, photo in _photos():
        images.append((name, photo))
        for k in range(4):  # random square crops: closer views of the same scenes
            side = int(min(photo.size) * rng.uniform(0.3, 0.7))
            x = int(rng.integers(0, photo.width - side + 1))
            y = int(rng.integers(0, photo.height - side + 1))
            images.append((f"{name}_crop{k}", photo.crop((x, y, x + side, y + side))))
        images.append((f"{name}_blurred", photo.filter(ImageFilter.GaussianBlur(6))))
    images.extend(_fields(rng))
    return images
