"""Images in the blob store: clean, metadata-free bytes, named by their SHA-256, never a user's."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps

from core.storage.blobs import BlobStore

Encoding = Literal["png", "jpg"]


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    size: int  # bytes as stored


def encode(image: Image.Image, *, for_display: bool = False) -> tuple[bytes, Encoding]:
    """The bytes an image is stored as. Lossless PNG by default. A picture made only to be
    looked at (the annotated field) is a JPEG: five times quicker to write, and Telegram
    re-encodes photos as JPEG anyway."""
    buffer = io.BytesIO()
    if for_display:
        # Full-resolution chroma keeps the coloured labels and thin boxes sharp.
        image.save(buffer, format="JPEG", quality=90, subsampling=0)
        return buffer.getvalue(), "jpg"
    # Compress level 1 keeps 12 MP photos quick to write.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), "png"


class ImageStore:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def put(self, image: Image.Image, *, for_display: bool = False) -> StoredImage:
        """Store a clean RGB image with no metadata; idempotent for equal content."""
        return self.put_encoded(*encode(image, for_display=for_display))

    def put_encoded(self, data: bytes, encoding: Encoding) -> StoredImage:
        """Store already-encoded, already-clean image bytes as they are."""
        return StoredImage(self.blobs.put(data, encoding), len(data))

    def exists(self, sha256: str) -> bool:
        return self.blobs.exists(sha256)

    def read(self, sha256: str) -> bytes:
        """The stored, encoded bytes (verified against their name)."""
        return self.blobs.get(sha256)

    def open(self, sha256: str) -> Image.Image:
        """The stored image, upright (a rotated photo is stored as sent, with its orientation)."""
        with Image.open(io.BytesIO(self.read(sha256))) as stored:
            if stored.getexif().get(0x0112, 1) == 1:
                return stored.convert("RGB")  # the usual case: no copy to turn
            return ImageOps.exif_transpose(stored).convert("RGB")
