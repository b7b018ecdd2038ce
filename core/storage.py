"""Content-addressed image storage: a file's name is the SHA-256 of its bytes, never a user's."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: Path


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.png"

    def put(self, image: Image.Image) -> StoredImage:
        """Store a clean RGB image as PNG with no metadata; idempotent for equal content."""
        buffer = io.BytesIO()
        # Lossless and metadata-free; compress level 1 keeps 12 MP photos quick to write.
        image.save(buffer, format="PNG", compress_level=1)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
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
