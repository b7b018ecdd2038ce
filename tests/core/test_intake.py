"""Opening untrusted uploads: every refusal is an IntakeError with a message for the user."""

import io

import pytest
from PIL import Image, ImageOps

from core.intake import IntakeError, open_image
from core.jpeg import scan_count
from tests.conftest import heic_bytes, jpeg_bytes, pbc_fixtures
from tests.hostile import scan_bomb

LIMITS = {"max_pixels": 50_000_000, "max_bytes": 20_000_000}


def _exif_rotated_jpeg() -> bytes:
    # A landscape image whose EXIF says "rotate 90° clockwise to display" (orientation 6),
    # carrying a GPS tag that must not survive.
    image = Image.new("RGB", (120, 60), (200, 50, 50))
    image.paste((20, 20, 200), (0, 0, 30, 60))  # blue stripe on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}
    return jpeg_bytes(image, exif=exif.tobytes())


def test_a_jpeg_opens_as_rgb_with_its_size() -> None:
    result = open_image(jpeg_bytes(Image.new("RGB", (64, 48), "white")), **LIMITS)
    assert (result.width, result.height, result.image.mode) == (64, 48, "RGB")
    assert result.source_format == "JPEG"


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    result = open_image(_exif_rotated_jpeg(), **LIMITS)
    assert (result.width, result.height) == (60, 120)
    red, _green, blue = result.image.getpixel((30, 5))  # the stripe is now at the top
    assert blue > red
    assert not result.image.info.get("exif")
    assert len(result.image.getexif()) == 0


def test_an_upright_jpeg_keeps_the_senders_bytes_less_their_metadata() -> None:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}
    sent = jpeg_bytes(Image.effect_noise((96, 64), 40).convert("RGB"), exif=exif.tobytes())
    result = open_image(sent, **LIMITS)
    assert result.encoded_jpeg is not None and len(result.encoded_jpeg) < len(sent)
    with Image.open(io.BytesIO(result.encoded_jpeg)) as stored:
        assert len(stored.getexif()) == 0
        assert stored.convert("RGB").tobytes() == result.image.tobytes()


def test_a_rotated_jpeg_is_kept_as_sent_with_only_its_orientation() -> None:
    sent = _exif_rotated_jpeg()
    result = open_image(sent, **LIMITS)
    assert result.encoded_jpeg is not None and len(result.encoded_jpeg) < len(sent)
    with Image.open(io.BytesIO(result.encoded_jpeg)) as stored:
        assert dict(stored.getexif()) == {0x0112: 6}  # no GPS, no camera: the turn alone
        upright = ImageOps.exif_transpose(stored).convert("RGB")
    assert upright.size == (60, 120) and upright.tobytes() == result.image.tobytes()


def test_a_non_jpeg_image_is_not_kept_as_sent() -> None:
    png = io.BytesIO()
    Image.new("RGB", (64, 48)).save(png, format="PNG")
    assert open_image(png.getvalue(), **LIMITS).encoded_jpeg is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "not_an_image"),
        (b"\x00" * 1000, "not_an_image"),
    ],
)
def test_non_images_are_refused(data: bytes, code: str) -> None:
    with pytest.raises(IntakeError) as error:
        open_image(data, **LIMITS)
    assert error.value.code == code
    assert error.value.user_message


def test_a_truncated_jpeg_is_refused_as_damaged() -> None:
    whole = jpeg_bytes(Image.effect_noise((256, 256), 60).convert("RGB"))
    with pytest.raises(IntakeError) as error:
        open_image(whole[: len(whole) // 2], **LIMITS)
    assert error.value.code == "corrupt"


def test_too_many_pixels_are_refused_before_decoding() -> None:
    big = Image.new("RGB", (4000, 3000))
    with pytest.raises(IntakeError) as error:
        open_image(jpeg_bytes(big), max_pixels=10_000_000, max_bytes=20_000_000)
    assert error.value.code == "too_many_pixels"
    assert "4000x3000" in error.value.user_message


def test_an_oversized_file_is_refused() -> None:
    data = jpeg_bytes(Image.new("RGB", (64, 64)))
    with pytest.raises(IntakeError) as error:
        open_image(data, max_pixels=10_000_000, max_bytes=len(data) - 1)
    assert error.value.code == "too_large"


def test_formats_outside_the_allowed_list_are_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="GIF")
    with pytest.raises(IntakeError) as error:
        open_image(buffer.getvalue(), **LIMITS)
    assert error.value.code == "format"


def test_tiny_images_are_refused() -> None:
    with pytest.raises(IntakeError) as error:
        open_image(jpeg_bytes(Image.new("RGB", (1, 1))), **LIMITS)
    assert error.value.code == "too_small"


def test_transparent_png_is_composited_on_white() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(buffer, format="PNG")
    result = open_image(buffer.getvalue(), **LIMITS)
    assert result.image.getpixel((10, 10)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    buffer = io.BytesIO()
    Image.new("I;16", (40, 40), 32768).save(buffer, format="PNG")
    result = open_image(buffer.getvalue(), **LIMITS)
    assert 120 <= result.image.getpixel((5, 5))[0] <= 136


def test_an_iphone_heic_opens_upright_without_its_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}
    cell = Image.open(pbc_fixtures()["neutrophil"]).convert("RGB")
    data = heic_bytes(cell, exif=exif.tobytes())
    assert data[4:12] == b"ftypheic"
    result = open_image(data, **LIMITS)
    assert result.source_format == "HEIF" and (result.width, result.height) == cell.size
    assert result.encoded_jpeg is None and not result.image.info
    # Lossy HEVC: close to the original pixels, not equal.
    difference = sum(abs(a - b) for a, b in zip(result.image.resize((16, 16)).tobytes(),
                                                 cell.resize((16, 16)).tobytes(), strict=True))
    assert difference / (16 * 16 * 3) < 8


def test_a_jpeg_only_checked_keeps_its_bytes_and_real_size_but_not_its_pixels() -> None:
    sent = jpeg_bytes(Image.effect_noise((960, 640), 40).convert("RGB"))
    checked = open_image(sent, **LIMITS, full_decode=False)
    full = open_image(sent, **LIMITS)
    assert checked.encoded_jpeg == full.encoded_jpeg
    assert (checked.width, checked.height) == (960, 640)
    assert checked.image.width <= 960 // 8 + 1  # the reduced decode that checked the stream
    rotated = open_image(_exif_rotated_jpeg(), **LIMITS, full_decode=False)
    assert (rotated.width, rotated.height) == (60, 120)


def test_a_truncated_jpeg_is_refused_even_when_only_checked() -> None:
    data = jpeg_bytes(Image.effect_noise((640, 480), 40).convert("RGB"))
    with pytest.raises(IntakeError) as refused:
        open_image(data[: len(data) // 2], **LIMITS, full_decode=False)
    assert refused.value.code == "corrupt"


def test_a_progressive_photo_opens_and_a_jpeg_of_hundreds_of_scans_is_refused_unread() -> None:
    photo = scan_bomb(0)
    assert 2 < scan_count(photo) <= 12  # libjpeg's progressive script
    assert open_image(photo, max_pixels=10**8, max_bytes=10**8).image.size == (256, 258)
    with pytest.raises(IntakeError) as refused:
        open_image(scan_bomb(500), max_pixels=10**8, max_bytes=10**8)
    assert refused.value.code == "too_many_scans"
    assert "as the camera saved it" in refused.value.user_message
