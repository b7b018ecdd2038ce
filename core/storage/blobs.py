"""Content-addressed blobs: every stored file is named by the SHA-256 of its bytes.

Two backends behind one interface: a folder (one host, the embedded default) and a table of
the database (every host that reaches the database reaches the files). Reads verify the hash,
so a corrupted or swapped file is refused by name, on either backend.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Literal, Protocol

Kind = Literal["png", "jpg", "safetensors"]
KINDS: tuple[Kind, ...] = ("png", "jpg", "safetensors")
_HEX = frozenset("0123456789abcdef")


class BlobError(RuntimeError):
    """A stored file that cannot be given back; the message says which and why."""


class BlobNotFound(BlobError, LookupError):
    pass


class BlobIntegrityError(BlobError):
    """The stored bytes do not hash to their name: corrupted, truncated or swapped."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write-then-rename, so a crash never leaves a half-written file under a valid name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_digest(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


def verified(sha256: str, data: bytes, where: str) -> bytes:
    if sha256_of(data) != sha256:
        raise BlobIntegrityError(f"stored file {sha256[:12]}… in {where} does not match its "
                                 "SHA-256: it is corrupted and was refused")
    return data


class BlobStore(Protocol):
    # True when other hosts reach the same files (models are then published to it).
    shared: bool

    def put(self, data: bytes, kind: Kind) -> str:
        """Store ``data`` (idempotent) and return its SHA-256. A stored copy that no longer
        matches its name (a damaged disk or row) is replaced: sending the photo again repairs
        it."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes named ``sha256``, verified; BlobNotFound or BlobIntegrityError if not."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> bool:
        """Remove the blob; False if there was none."""
        ...


class FolderBlobs:
    """Files under ``root/ab/cd/<sha256>.<kind>``: the layout image storage always had."""

    shared = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def _stem(self, sha256: str) -> Path:
        check_digest(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def path_of(self, sha256: str) -> Path | None:
        stem = self._stem(sha256)
        for kind in KINDS:
            path = stem.with_suffix(f".{kind}")
            if path.is_file():
                return path
        return None

    def put(self, data: bytes, kind: Kind) -> str:
        digest = sha256_of(data)
        path = self._stem(digest).with_suffix(f".{kind}")
        if not path.exists() or sha256_of(path.read_bytes()) != digest:
            write_atomically(path, data)  # new, or a damaged copy repaired
        return digest

    def get(self, sha256: str) -> bytes:
        path = self.path_of(sha256)
        if path is None:
            raise BlobNotFound(f"no stored file {sha256[:12]}… in {self.root}")
        return verified(sha256, path.read_bytes(), str(self.root))

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256) is not None

    def delete(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True
