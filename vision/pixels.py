"""Images as the analysis reads them."""

from __future__ import annotations

from PIL import Image


def rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB: itself when it already is (``convert`` copies even then, 50 ms for a
    12 MP photo, and the path never draws on the image it is given)."""
    return image if image.mode == "RGB" else image.convert("RGB")
