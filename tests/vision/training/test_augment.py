"""Training augmentations: reproducible from a seed on any device, and shaped like the view."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from tests.conftest import pbc_fixtures
from vision.model.preprocess import Preprocessing, square_crop
from vision.training.augment import (
    AugmentConfig,
    augment_batch,
    cache_size_for,
    centre_batch,
    jpeg_artefacts,
)


def cache_squares(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 256, 256), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(7))


def test_the_same_seed_gives_the_same_augmented_batch() -> None:
    images = cache_squares(6)
    first = augment_batch(images, 96, AugmentConfig(), torch.Generator().manual_seed(3))
    again = augment_batch(images, 96, AugmentConfig(), torch.Generator().manual_seed(3))
    other = augment_batch(images, 96, AugmentConfig(), torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_images_outside_the_colour_share_keep_their_own_colours() -> None:
    images = cache_squares(8)
    strong = AugmentConfig(stain_alpha=0.7, stain_beta=0.25, white_balance=0.5, brightness=0.35,
                           contrast=0.5, saturation=0.9, gamma=0.5, hue=1.2, p_blur=0, p_low_res=0,
                           p_jpeg=0, p_noise=0)
    colourless = AugmentConfig(stain_alpha=0, stain_beta=0, white_balance=0, brightness=0,
                               contrast=0, saturation=0, gamma=0, hue=0, p_blur=0, p_low_res=0,
                               p_jpeg=0, p_noise=0)

    def seeded() -> torch.Generator:
        return torch.Generator().manual_seed(5)

    unjittered = augment_batch(images, 96, colourless, seeded())
    none = augment_batch(images, 96, replace(strong, colour_share=0.0), seeded())
    half = augment_batch(images, 96, replace(strong, colour_share=0.5), seeded())
    kept = [torch.allclose(half[i], unjittered[i], atol=1e-5) for i in range(len(images))]
    # Geometry is drawn before the share, so the images that keep their colours match exactly.
    assert torch.allclose(none, unjittered, atol=1e-5)
    assert any(kept) and not all(kept)


def test_an_augmented_batch_is_the_view_size_in_the_unit_range() -> None:
    x = augment_batch(cache_squares(4), 128, AugmentConfig(p_jpeg=1.0, p_blur=1.0),
                      torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 128, 128)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_jpeg_artefacts_take_one_quality_per_image() -> None:
    x = cache_squares(2).float() / 255
    both = jpeg_artefacts(x, [20, 90])
    assert torch.equal(both[0:1], jpeg_artefacts(x[0:1], 20))
    assert torch.equal(both[1:2], jpeg_artefacts(x[1:2], 90))
    # A harsher quality moves the pixels further from the original.
    assert (both[0] - x[0]).abs().mean() > (both[1] - x[1]).abs().mean()


def test_the_evaluation_view_of_a_larger_cache_is_what_serving_sees() -> None:
    # A model served at 288 px trains and is judged on the view its card's preprocessing makes.
    crop = 288
    size = cache_size_for(crop)
    with Image.open(pbc_fixtures()["neutrophil"]) as image:
        cached = torch.from_numpy(np.asarray(square_crop(image, size)).copy()).permute(2, 0, 1)
        served = Preprocessing(resize=size, crop=crop).resize_and_crop(image)
    view = centre_batch(cached[None], crop)[0]
    expected = torch.from_numpy(np.asarray(served, dtype=np.float32) / 255).permute(2, 0, 1)
    assert (size, view.shape) == (329, (3, crop, crop))
    # Pixel for pixel. The cell resizes to 329 x 332, where cropping 288 straight from the
    # resized image (instead of from the centred square) sits one pixel off the trained view.
    assert torch.allclose(view, expected, atol=1e-6)


def test_the_cache_for_the_lite0_serving_crop_is_the_256_square() -> None:
    assert cache_size_for(224) == 256


def test_turning_the_hue_keeps_brightness_and_a_grey_image_grey() -> None:
    from vision.training.augment import rotate_hue

    colours = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2
    turned = rotate_hue(colours, torch.full((4,), 0.4))
    luminance = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]
    assert torch.allclose((turned * luminance).sum(1), (colours * luminance).sum(1), atol=1e-5)
    assert not torch.allclose(turned, colours, atol=1e-2)
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert torch.allclose(rotate_hue(grey, torch.tensor([1.0])), grey, atol=1e-5)
    assert torch.allclose(rotate_hue(colours, torch.zeros(4)), colours, atol=1e-5)
