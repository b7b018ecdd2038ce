"""Stripping a JPEG's metadata keeps its pixels bit for bit and drops everything else."""

import io

import pytest
from PIL import Image

from core.jpeg import strip_metadata
from tests.conftest import FIXTURES, jpeg_bytes


def _cell() -> Image.Image:
    with Image.open(FIXTURES / "pbc" / "neutrophil__BNE_101082.jpg") as image:
        clean = image.convert("RGB")
    clean.info = {}  # the fixture's own comment segment would make every case carry metadata
    return clean


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def _exif_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}
    return exif.tobytes()


@pytest.mark.parametrize("options", [
    {}, {"progressive": True}, {"restart_marker_blocks": 1}, {"subsampling": 0, "quality": 97},
], ids=["baseline", "progressive", "restart-markers", "444"])
def test_metadata_is_removed_and_the_pixels_are_unchanged(options: dict[str, object]) -> None:
    original = jpeg_bytes(_cell(), exif=_exif_with_gps(), comment=b"shot at Clinic X",
                          icc_profile=b"\x00" * 200, **options)
    stripped = strip_metadata(original)
    assert stripped is not None
    assert _pixels(stripped) == _pixels(original)
    assert b"PhoneMaker" not in stripped and b"Clinic X" not in stripped
    with Image.open(io.BytesIO(stripped)) as reopened:
        assert len(reopened.getexif()) == 0
        assert "icc_profile" not in reopened.info


def test_anything_after_the_end_of_the_image_is_cut() -> None:
    original = jpeg_bytes(_cell())
    second_picture = jpeg_bytes(Image.new("RGB", (8, 8)), exif=_exif_with_gps())
    assert strip_metadata(original + second_picture) == original


def test_a_file_without_metadata_comes_back_as_it_was() -> None:
    original = jpeg_bytes(_cell())
    assert strip_metadata(original) == original


@pytest.mark.parametrize("data", [
    b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff\xe1\xff\xff", b"\xff\xd8\x00\x00",
], ids=["empty", "png", "soi-only", "bad-length", "no-marker"])
def test_what_is_not_a_plain_jpeg_is_left_to_the_decoder(data: bytes) -> None:
    assert strip_metadata(data) is None


def test_a_truncated_scan_is_left_to_the_decoder() -> None:
    original = jpeg_bytes(_cell())
    assert strip_metadata(original[: len(original) * 2 // 3]) is None


def _with_app0(data: bytes, segment_body: bytes) -> bytes:
    """``data`` with one more APP0 segment right after its start-of-image marker."""
    segment = b"\xff\xe0" + (len(segment_body) + 2).to_bytes(2, "big") + segment_body
    return data[:2] + segment + data[2:]


def test_a_jfif_thumbnail_and_a_jfxx_extension_are_dropped_the_header_kept() -> None:
    plain = jpeg_bytes(_cell())
    assert plain[2:4] == b"\xff\xe0" and plain[6:11] == b"JFIF\x00"  # Pillow writes JFIF
    payload = b"SECRET-PAYLOAD" * 10
    thumbnail = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01" + bytes([2, 2]) + payload[:12]
    jfxx = b"JFXX\x00\x13" + payload
    hostile = _with_app0(_with_app0(plain[:2] + plain[2 + 2 + 16:], jfxx), thumbnail)
    stripped = strip_metadata(hostile)
    assert stripped is not None and b"SECRET" not in stripped and b"JFXX" not in stripped
    assert stripped[2:4] == b"\xff\xe0" and stripped[6:11] == b"JFIF\x00"
    assert stripped[11:18] == b"\x01\x02\x00\x00\x01\x00\x01"  # version and density kept
    assert _pixels(stripped) == _pixels(plain)
