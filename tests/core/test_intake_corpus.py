"""Every one of 500+ hostile uploads ends as a clean image or a clear refusal, never a crash.

Property-based fuzzing (hypothesis) then tries arbitrary bytes and mutated real images.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.intake import IntakeError, open_image
from tests.hostile import Upload, corpus, valid_images

LIMITS = {"max_pixels": 60_000_000, "max_bytes": 20_000_000}
CODES = {"empty", "too_large", "not_an_image", "corrupt", "format", "too_many_pixels",
         "too_small"}
CORPUS = corpus()


def _outcome(data: bytes, **limits: int) -> str:
    """'ok' for a clean image; the refusal's code otherwise. Anything else propagates."""
    try:
        result = open_image(data, **(limits or LIMITS))
    except IntakeError as refusal:
        assert refusal.code in CODES
        assert len(refusal.user_message) > 20 and "Traceback" not in refusal.user_message
        return refusal.code
    assert result.image.mode == "RGB" and min(result.image.size) >= 32
    assert not result.image.info.get("exif") and len(result.image.getexif()) == 0
    return "ok"


def test_the_corpus_has_more_than_five_hundred_files() -> None:
    assert len(CORPUS) >= 500
    assert len({u.name for u in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("upload", CORPUS, ids=[u.name for u in CORPUS])
def test_each_hostile_upload_is_opened_cleanly_or_refused_clearly(upload: Upload) -> None:
    _outcome(upload.data)


def test_the_expected_refusals_for_the_classic_attacks() -> None:
    by_name = {u.name: u for u in CORPUS}
    expected = {
        "empty.jpg": "empty", "report.pdf": "not_an_image", "report-renamed.jpg": "not_an_image",
        "vector.svg": "not_an_image", "bomb-100k-square.png": "too_many_pixels",
        "bomb-65k.jpg": "too_many_pixels", "bomb-real-144mp.png": "too_many_pixels",
        "gif-huge-screen.gif": "too_many_pixels", "1x1.png": "too_small", "animated.gif": "format",
        "rgb-cut30.jpg": "corrupt",
    }
    assert {name: _outcome(by_name[name].data) for name in expected} == expected


def test_modes_and_orientations_that_are_real_photos_are_accepted() -> None:
    accepted = {u.name for u in valid_images() if _outcome(u.data) == "ok"}
    assert {"cmyk.jpg", "sixteen-bit.png", "palette.png", "rgba.png", "multipage.tif",
            "cmyk.tif", "lossless-alpha.webp", "exif-orientation-6.jpg"} <= accepted


def test_an_oversized_document_is_refused_before_it_is_decoded() -> None:
    big = max(CORPUS, key=lambda u: len(u.data))
    assert _outcome(big.data, max_pixels=60_000_000, max_bytes=len(big.data) - 1) == "too_large"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash_the_intake(data: bytes) -> None:
    _outcome(data)


SEEDS = [u.data for u in valid_images() if len(u.data) > 200]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                        max_size=12),
       st.integers(0, 10**6))
def test_mutated_real_images_never_crash_the_intake(
    seed: bytes, edits: list[tuple[int, int]], cut: int,
) -> None:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    _outcome(bytes(data[: max(1, len(data) - cut % len(data))]))
