"""Content-addressed image storage: a file's name is the SHA-256 of its bytes, never a user's."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

_HEX = frozenset("0123456789abcdef")
Encoding = Literal["png", "jpg"]
_SUFFIXES: tuple[Encoding, ...] = ("png", "jpg")


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: Path


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _stem(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def path_for(self, sha256: str) -> Path:
        """Where the image with this digest is (a PNG path if it is not stored yet)."""
        stem = self._stem(sha256)
        for suffix in _SUFFIXES:
            path = stem.with_suffix(f".{suffix}")
            if path.is_file():
                return path
        return stem.with_suffix(".png")

    def put(self, image: Image.Image, *, for_display: bool = False) -> StoredImage:
        """Store a clean RGB image with no metadata; idempotent for equal content.

        Lossless PNG by default. A picture made only to be looked at (the annotated field) is
        a JPEG: five times quicker to write, and Telegram re-encodes photos as JPEG anyway.
        """
        buffer = io.BytesIO()
        if for_display:
            # Full-resolution chroma keeps the coloured labels and thin boxes sharp.
            image.save(buffer, format="JPEG", quality=90, subsampling=0)
            return self.put_encoded(buffer.getvalue(), "jpg")
        # Compress level 1 keeps 12 MP photos quick to write.
        image.save(buffer, format="PNG", compress_level=1)
        return self.put_encoded(buffer.getvalue(), "png")

    def put_encoded(self, data: bytes, encoding: Encoding) -> StoredImage:
        """Store already-encoded, already-clean image bytes as they are."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._stem(digest).with_suffix(f".{encoding}")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename so a crash never leaves a half-written file under a valid name.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return StoredImage(sha256=digest, path=path)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def open(self, sha256: str) -> Image.Image:
        with Image.open(self.path_for(sha256)) as stored:
            return stored.convert("RGB")
