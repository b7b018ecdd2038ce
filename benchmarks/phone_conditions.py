"""Simulated phone-through-eyepiece conditions applied to BCCD fields, with boxes mapped along."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Boxes = dict[str, list[tuple[int, int, int, int]]]
Condition = Callable[[Image.Image, Boxes], tuple[Image.Image, Boxes]]


def _map_boxes(boxes: Boxes, fn: Callable[[float, float], tuple[float, float]],
               keep: Callable[[float, float], bool] | None = None) -> Boxes:
    out: Boxes = {}
    for kind, items in boxes.items():
        mapped = []
        for x0, y0, x1, y1 in items:
            corners = [fn(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
            xs, ys = zip(*corners, strict=True)
            if keep is None or keep((x0 + x1) / 2, (y0 + y1) / 2):
                mapped.append((round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))))
        out[kind] = mapped
    return out


def vignette(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """The eyepiece: a circle of diameter 0.95 x the shorter side, black outside."""
    w, h = image.size
    radius = 0.475 * min(w, h)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((w / 2 - radius, h / 2 - radius, w / 2 + radius, h / 2 + radius),
                                 fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(4))
    dark = Image.new("RGB", image.size, (8, 8, 10))
    # A cell is visible (and annotated) when its centre lies inside the circle.
    inside = lambda x, y: (x - w / 2) ** 2 + (y - h / 2) ** 2 <= radius ** 2  # noqa: E731
    return Image.composite(image, dark, mask), _map_boxes(boxes, lambda x, y: (x, y), inside)


def vignette_visible(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """The same eyepiece, scored against what can be seen: each annotation box shrunk to the
    bounding box of its part inside the circle (as BCCD's own boxes stop at the image edge)."""
    w, h = image.size
    radius = 0.475 * min(w, h)
    out, kept = vignette(image, boxes)
    visible: Boxes = {}
    for kind, items in kept.items():
        clipped = []
        for x0, y0, x1, y1 in items:
            ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
            inside = (xs - w / 2) ** 2 + (ys - h / 2) ** 2 <= radius ** 2
            clipped.append((int(xs[inside].min()), int(ys[inside].min()),
                            int(xs[inside].max()), int(ys[inside].max())))
        visible[kind] = clipped
    return out, visible


def tilt(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """A phone held about 8 degrees off the eyepiece axis (a mild keystone)."""
    w, h = image.size
    k = 0.06
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(k * w, 0), (w - k * w, 0), (w, h), (0, h)]
    coeffs = _perspective(dst, src)  # maps output -> input, as PIL wants
    warped = image.transform(image.size, Image.Transform.PERSPECTIVE, coeffs,
                             Image.Resampling.BICUBIC, fillcolor=(8, 8, 10))
    forward = _perspective(src, dst)

    def apply(x: float, y: float) -> tuple[float, float]:
        a, b, c, d, e, f, g, hh = forward
        den = g * x + hh * y + 1
        return (a * x + b * y + c) / den, (d * x + e * y + f) / den

    return warped, _map_boxes(boxes, apply)


def _perspective(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """Coefficients of the projective map taking ``dst`` points to ``src`` points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return list(np.linalg.solve(np.array(rows, float), np.array(rhs, float)))


def defocus(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """Slightly out of focus: Gaussian blur, sigma 1.2 px at 640 px."""
    return image.filter(ImageFilter.GaussianBlur(1.2)), boxes


def colour_cast(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """Warm lamp and auto white balance gone wrong: R x1.10, B x0.85."""
    array = np.asarray(image, dtype=np.float32) * np.array([1.10, 1.0, 0.85])
    return Image.fromarray(array.clip(0, 255).astype(np.uint8)), boxes


def jpeg(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """Messenger recompression: JPEG quality 40."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=40)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), boxes


def upscale_12mp(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """A 12 MP phone sensor (4000 x 3000): the field upscaled bicubically."""
    sx, sy = 4000 / image.width, 3000 / image.height
    return (image.resize((4000, 3000), Image.Resampling.BICUBIC),
            _map_boxes(boxes, lambda x, y: (x * sx, y * sy)))


def phone(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """All at once: cast, tilt, vignette, JPEG, 12 MP."""
    for step in (colour_cast, tilt, vignette, jpeg, upscale_12mp):
        image, boxes = step(image, boxes)
    return image, boxes


def phone_visible(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """All at once, scored against the visible part of each cell, as ``vignette_visible``."""
    for step in (colour_cast, tilt, vignette_visible, jpeg, upscale_12mp):
        image, boxes = step(image, boxes)
    return image, boxes


CONDITIONS: dict[str, Condition] = {
    "clean": lambda image, boxes: (image, boxes),
    "eyepiece_vignette": vignette,
    "eyepiece_vignette_visible_part": vignette_visible,
    "perspective_tilt": tilt,
    "defocus": defocus,
    "colour_cast": colour_cast,
    "jpeg_q40": jpeg,
    "upscaled_12mp": upscale_12mp,
    "all_combined_12mp": phone,
    "all_combined_12mp_visible_part": phone_visible,
}
