"""Batch augmentations that imitate other laboratories, stains, microscopes and phone cameras.

Everything works on a float batch in [0, 1] (N x 3 x H x W) with an independent draw per image,
vectorised where it can be, because on two cores per-image Python loops would cost more than the
network.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vision.model.preprocess import VIEW_FRACTION, Preprocessing

# Ruifrok & Johnston stain vectors (haematoxylin, eosin, DAB), as in scikit-image's rgb2hed.
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
RGB_FROM_HED = RGB_FROM_HED / RGB_FROM_HED.norm(dim=1, keepdim=True)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)
_EPS = 1e-6


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def hed_jitter(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Scale and shift each image's stain concentrations (alpha, beta: N x 3)."""
    od = -torch.log(x.clamp_min(_EPS))
    hed = torch.einsum("nchw,cd->ndhw", od, HED_FROM_RGB.to(x.device))
    hed = hed * alpha[:, :, None, None].to(x.device) + beta[:, :, None, None].to(x.device)
    od = torch.einsum("ndhw,dc->nchw", hed, RGB_FROM_HED.to(x.device))
    return torch.exp(-od).clamp(0, 1)


def colour(x: torch.Tensor, gains: torch.Tensor, brightness: torch.Tensor,
           contrast: torch.Tensor, saturation: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """White balance (per-channel gains), brightness, contrast, saturation and gamma per image."""
    gains, brightness, contrast, saturation, gamma = (
        t.to(x.device) for t in (gains, brightness, contrast, saturation, gamma))
    x = x * gains[:, :, None, None] * brightness[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast[:, None, None, None] + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * saturation[:, None, None, None] + grey
    return x.clamp(0, 1) ** gamma[:, None, None, None]


def rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Turn each image's hue by ``angle`` (radians) in YIQ space, keeping its luminance: another
    laboratory's stain can be bluer or pinker as a whole than any HED jitter of ours."""
    rgb_to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                               [0.211, -0.523, 0.312]], dtype=x.dtype, device=x.device)
    yiq_to_rgb = torch.linalg.inv(rgb_to_yiq)
    cos, sin = torch.cos(angle).to(x.device), torch.sin(angle).to(x.device)
    rotation = torch.zeros(len(x), 3, 3, dtype=x.dtype, device=x.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    matrix = yiq_to_rgb @ rotation @ rgb_to_yiq  # N x 3 x 3
    return torch.einsum("ncd,ndhw->nchw", matrix, x).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own sigma (0 means unchanged), in one grouped convolution."""
    n, c, h, w = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    safe = sigma.to(x.device).clamp_min(1e-3)[:, None]
    kernel = torch.exp(-(offsets[None, :] ** 2) / (2 * safe**2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(c, dim=0)  # (n*c, k)
    flat = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def affine(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
           flip: torch.Tensor) -> torch.Tensor:
    """Rotate (radians), zoom, shift and mirror each image; the border is reflected."""
    angle, scale, shift, flip = (t.to(x.device) for t in (angle, scale, shift, flip))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    mirror = torch.where(flip, -1.0, 1.0)
    theta = torch.stack([
        torch.stack([cos * mirror, -sin, shift[:, 0]], dim=1),
        torch.stack([sin * mirror, cos, shift[:, 1]], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def low_resolution(x: torch.Tensor, factor: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(8, round(h * factor)), max(8, round(w * factor))),
                          mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def jpeg_artefacts(x: torch.Tensor, quality: int | list[int]) -> torch.Tensor:
    """Re-encode each image as JPEG at ``quality`` (one for all, or one per image).

    Pillow's libjpeg, like most phones; the images make one round trip to the CPU for it.
    """
    qualities = [quality] * len(x) if isinstance(quality, int) else quality
    out = torch.empty(x.shape, dtype=x.dtype)
    as_bytes = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    for index, (array, each) in enumerate(zip(as_bytes, qualities, strict=True)):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=each)
        decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
        out[index] = torch.from_numpy(decoded).permute(2, 0, 1)
    return out.to(x.device)


@dataclass(frozen=True)
class AugmentConfig:
    stain_alpha: float = 0.15  # haematoxylin/eosin concentration x U(1 - a, 1 + a)
    stain_beta: float = 0.05
    white_balance: float = 0.12
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.3
    gamma: float = 0.2
    zoom: float = 0.15
    shift: float = 0.06
    p_blur: float = 0.3
    max_blur_sigma: float = 1.8
    p_low_res: float = 0.25
    p_jpeg: float = 0.3
    p_noise: float = 0.2
    hue: float = 0.0  # hue turned by U(-h, h) radians
    # The share of images whose colours (stain, white balance, brightness to gamma, hue) are
    # jittered; the rest keep their own. Tried at 0.5 against full colour invariance, which cost
    # LISC's monocytes and lymphocytes what it gave Bio-Net's eosinophils: worse on both
    # (benchmarks.device_sweep, BENCHMARKS.md).
    colour_share: float = 1.0


def cache_size_for(crop: int) -> int:
    """The square a cache holds for a model served at ``crop`` px: what serving resizes to."""
    return Preprocessing.for_crop(crop).resize


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 cache squares -> float [0, 1] at the resolution whose centre crop is ``size``."""
    x = images.float() / 255
    full = round(size / VIEW_FRACTION)
    if x.shape[-1] != full:
        x = F.interpolate(x, size=(full, full), mode="bilinear", antialias=True,
                          align_corners=False)
    return x


def _centre(x: torch.Tensor, size: int) -> torch.Tensor:
    offset = (x.shape[-1] - size) // 2
    return x[..., offset:offset + size, offset:offset + size]


def augment_batch(images: torch.Tensor, size: int, config: AugmentConfig,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 N x 3 x S x S cache squares -> augmented float N x 3 x size x size in [0, 1].

    Runs on the device ``images`` are on; the random draws come from ``generator`` on the CPU,
    so a seed gives the same augmentations on every device.
    """
    n = images.shape[0]
    x = _resized(images, size)
    # Cells have no up or down: any rotation and mirroring are label-preserving. Rotating the
    # whole square before cropping keeps real pixels in the corners of the view.
    x = affine(x, _uniform(n, 0, 2 * math.pi, generator),
               _uniform(n, 1 - config.zoom, 1 + config.zoom, generator),
               (torch.rand(n, 2, generator=generator) * 2 - 1) * config.shift,
               torch.rand(n, generator=generator) < 0.5)
    x = _centre(x, size).contiguous()
    # 1 where an image's colours are jittered, 0 where it keeps its own. Drawn only when some
    # keep theirs, so a recipe at the default draws the same numbers as before the share was.
    k = (torch.ones(n) if config.colour_share >= 1
         else (torch.rand(n, generator=generator) < config.colour_share).float())
    kc = k[:, None]
    a, b = config.stain_alpha, config.stain_beta
    x = hed_jitter(x, 1 + (torch.rand(n, 3, generator=generator) * 2 - 1) * a * kc,
                   (torch.rand(n, 3, generator=generator) * 2 - 1) * b * kc)
    wb = config.white_balance
    x = colour(
        x, 1 + (torch.rand(n, 3, generator=generator) * 2 - 1) * wb * kc,
        1 + _uniform(n, -config.brightness, config.brightness, generator) * k,
        1 + _uniform(n, -config.contrast, config.contrast, generator) * k,
        1 + _uniform(n, -config.saturation, config.saturation, generator) * k,
        torch.exp(_uniform(n, -config.gamma, config.gamma, generator) * k),
    )
    if config.hue:
        x = rotate_hue(x, _uniform(n, -config.hue, config.hue, generator) * k)
    blur = torch.rand(n, generator=generator) < config.p_blur
    if blur.any():
        sigma = _uniform(int(blur.sum()), 0.3, config.max_blur_sigma, generator)
        blur = blur.to(x.device)
        x[blur] = gaussian_blur(x[blur], sigma)
    for index in torch.nonzero(torch.rand(n, generator=generator) < config.p_low_res)[:, 0]:
        factor = float(_uniform(1, 0.35, 0.8, generator))
        x[index:index + 1] = low_resolution(x[index:index + 1], factor)
    recoded = torch.nonzero(torch.rand(n, generator=generator) < config.p_jpeg)[:, 0]
    if len(recoded):
        qualities = [int(_uniform(1, 25, 90, generator)) for _ in recoded]
        recoded = recoded.to(x.device)
        x[recoded] = jpeg_artefacts(x[recoded], qualities)
    noisy = torch.rand(n, generator=generator) < config.p_noise
    if noisy.any():
        sigma = _uniform(int(noisy.sum()), 0.005, 0.03, generator)[:, None, None, None]
        noise = torch.randn((int(noisy.sum()), *x.shape[1:]), generator=generator) * sigma
        noisy = noisy.to(x.device)
        x[noisy] = x[noisy] + noise.to(x.device)
    return x.clamp(0, 1)


def centre_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Evaluation view: uint8 N x 3 x S x S cache squares -> the crop as float in [0, 1]."""
    return _centre(_resized(images, size), size).contiguous()


def normalise(x: torch.Tensor, mean: float = 0.5, std: float = 0.5) -> torch.Tensor:
    return (x - mean) / std
