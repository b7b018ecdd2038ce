"""Opening untrusted image bytes safely.

Every failure is an :class:`IntakeError` with a message written for the person who sent the file;
nothing else escapes, so a hostile upload can never take a process down.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError, features
from pillow_heif import register_heif_opener

from core.jpeg import MAX_SCANS, scan_count, strip_metadata, with_orientation

# iPhones send their "send as file" originals as HEIC: Pillow reads HEIF through the maintained
# pillow-heif plugin (registering is idempotent), and AVIF itself when built with libavif.
register_heif_opener()
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF", "BMP", "MPO", "HEIF"}
                            | ({"AVIF"} if features.check("avif") else set()))
ACCEPTED = "a JPEG, PNG, HEIC, WebP or TIFF photo"
MIN_SIDE = 32


class IntakeError(ValueError):
    """An upload we will not analyse; ``code`` is stable, ``user_message`` is for the chat."""

    def __init__(self, code: str, user_message: str) -> None:
        super().__init__(f"{code}: {user_message}")
        self.code = code
        self.user_message = user_message


@dataclass(frozen=True)
class IntakeImage:
    image: Image.Image  # RGB, EXIF orientation applied, no metadata attached
    source_format: str
    # The sender's own JPEG less its metadata (an orientation tag excepted), when it decodes to
    # exactly ``image`` once turned upright: stored as is, it keeps what was sent and saves a
    # re-encode. None when the image had to be changed.
    encoded_jpeg: bytes | None = None

    # The upright size of the upload, when ``image`` is only the reduced decode that checked it.
    checked_size: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        return (self.checked_size or self.image.size)[0]

    @property
    def height(self) -> int:
        return (self.checked_size or self.image.size)[1]


def open_image(data: bytes, *, max_pixels: int, max_bytes: int,
               full_decode: bool = True) -> IntakeImage:
    """The upload as a clean upright RGB image, or an IntakeError for the sender.

    With ``full_decode`` False, a JPEG kept as sent is only checked: its whole stream is
    decoded at an eighth of its size (``image`` is that reduced decode; ``width`` and
    ``height`` are the real ones). The bot stores such a JPEG without needing its pixels, and
    a 60 MP photo then costs it 3 MB instead of about a gigabyte.
    """
    if not data:
        raise IntakeError("empty", "The file is empty (0 bytes). Please send the photo again.")
    if len(data) > max_bytes:
        raise IntakeError(
            "too_large",
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.",
        )
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its own limit; we refuse anything over ours.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise _not_an_image(exc) from exc
        except Exception as exc:  # Pillow raises many types on hostile headers.
            raise IntakeError("corrupt", "This file could not be read as an image.") from exc
        return _decode(probe, data, max_pixels=max_pixels, full_decode=full_decode)


def _damaged() -> IntakeError:
    return IntakeError("corrupt", "The image file is damaged or incomplete. Please send it again.")


def _not_an_image(exc: Exception) -> IntakeError:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return IntakeError("too_many_pixels", "The image has too many pixels to analyse safely.")
    return IntakeError(
        "not_an_image",
        f"This file is not an image I can read. Please send {ACCEPTED}.",
    )


def _decode(probe: Image.Image, data: bytes, *, max_pixels: int,
            full_decode: bool) -> IntakeImage:
    fmt = probe.format or "unknown"
    if fmt not in ALLOWED_FORMATS:
        raise IntakeError(
            "format",
            f"{fmt} files are not accepted. Please send {ACCEPTED}.",
        )
    width, height = probe.size
    if width * height > max_pixels:
        raise IntakeError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; the limit is "
            f"{max_pixels / 1e6:.0f} megapixels.",
        )
    if min(width, height) < MIN_SIDE:
        raise IntakeError(
            "too_small", f"The image is only {width}x{height} pixels: too small to analyse."
        )
    if fmt == "JPEG" and (scans := scan_count(data)) > MAX_SCANS:
        # Refused before any decoding: each scan costs a pass over the whole image.
        raise IntakeError(
            "too_many_scans",
            f"This JPEG is built of {scans} scans (a photo has about ten) and would take too "
            "long to open. Please send the photo as the camera saved it.",
        )
    if plain := _plain_jpeg(probe, data, full_decode):
        return plain
    try:
        probe.seek(0)  # multi-page TIFF / MPO: the first frame is the photo
        probe.load()
        oriented = ImageOps.exif_transpose(probe)
        rgb = _to_rgb(oriented)
    except Exception as exc:
        raise _damaged() from exc
    return IntakeImage(image=rgb, source_format=fmt)


def _plain_jpeg(probe: Image.Image, data: bytes, full_decode: bool) -> IntakeImage | None:
    """The colour JPEG case (every photo a phone or Telegram sends): decode the stripped bytes.

    A rotated one keeps its orientation tag, and only that, so that it is stored as sent and
    turned upright when opened (``ImageStore.open``).
    """
    try:
        orientation = probe.getexif().get(0x0112, 1) if probe.format == "JPEG" else 0
        if probe.mode != "RGB" or orientation not in range(1, 9):
            return None
    except Exception:  # a damaged EXIF block: the general path decides
        return None
    stripped = strip_metadata(data)
    if stripped is None:
        return None
    if orientation != 1:
        stripped = with_orientation(stripped, orientation)
    try:
        with Image.open(io.BytesIO(stripped)) as image:
            width, height = image.size
            if not full_decode:
                image.draft("RGB", (width // 8, height // 8))
            image.load()
            rgb = _to_rgb(ImageOps.exif_transpose(image))
    except Exception as exc:
        raise _damaged() from exc
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return IntakeImage(image=rgb, source_format="JPEG", encoded_jpeg=stripped,
                       checked_size=None if full_decode else upright)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything to white.
        scaled = image.point(lambda value: value / 256).convert("L")
        return scaled.convert("RGB")
    # A fresh image carries no info dict, so no EXIF/GPS can follow it into storage.
    return Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
