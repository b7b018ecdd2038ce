"""Pixels as the analysis reads them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import pbc_fixtures
from vision.pixels import channel_mean, channel_sum, rgb


def test_the_channel_sum_and_mean_are_numpys_to_the_last_bit() -> None:
    photo = np.asarray(Image.open(pbc_fixtures()["neutrophil"]).convert("RGB"), dtype=np.float32)
    noise = np.random.default_rng(0).random((64, 48, 3), dtype=np.float32) * 255
    for pixels in (photo, noise, photo[::3, ::3], noise.astype(np.float64)):
        total, mean = channel_sum(pixels), channel_mean(pixels)
        assert total.dtype == mean.dtype == pixels.dtype
        assert np.array_equal(total, pixels.sum(axis=-1))
        assert np.array_equal(mean, pixels.mean(axis=-1))
    density = -np.log(np.clip(photo / np.array([220.0, 210.0, 230.0]), 0.05, 1.0))  # float64
    assert np.array_equal(channel_sum(density), density.sum(axis=-1))


def test_an_rgb_photo_is_read_as_it_is_and_others_are_converted() -> None:
    photo = Image.new("RGB", (4, 4), (10, 20, 30))
    assert rgb(photo) is photo
    assert rgb(photo.convert("L")).mode == "RGB"
