"""Model versions' weights wherever a worker runs: published to the shared store when there is
one, fetched into a local cache keyed by SHA-256, and verified before anything loads them."""

from __future__ import annotations

import json
from pathlib import Path

from core.db.session import SessionFactory
from core.registry import ModelRef, model_card
from core.storage.blobs import BlobStore, write_atomically
from vision.model.artifact import card_path, file_sha256


class ModelFiles:
    def __init__(self, blobs: BlobStore, cache_dir: Path, sessions: SessionFactory) -> None:
        self.blobs = blobs
        self.cache_dir = cache_dir / "models"
        self.sessions = sessions

    def publish(self, weights: Path) -> None:
        """Make a version's weights reachable from every host (nothing to do on one host)."""
        if self.blobs.shared:
            self.blobs.put(weights.read_bytes(), "safetensors")

    def local_path(self, ref: ModelRef) -> Path:
        """A local weights file (with its card beside it) that is the registered version.

        On one host, the registered path. With a shared store, this host's cache, else fetched
        from the store: a registered path names a file on the host that wrote it, which may
        be another one. BlobNotFound or BlobIntegrityError when none has it.
        """
        cached = self.cache_dir / f"{ref.sha256}.safetensors"
        for path in [cached] if self.blobs.shared else [Path(ref.path), cached]:
            if path.is_file() and card_path(path).is_file() and file_sha256(path) == ref.sha256:
                return path
        data = self.blobs.get(ref.sha256)  # verified against ref.sha256
        # The card first: a weights file is only ever seen with its card beside it.
        card = model_card(self.sessions, ref.id)
        write_atomically(card_path(cached), (json.dumps(card, indent=2) + "\n").encode())
        write_atomically(cached, data)
        return cached
