"""Where files live: content-addressed blobs on a folder or in the shared database."""

from __future__ import annotations

from core.db.session import SessionFactory
from core.settings import Settings
from core.storage.blobs import BlobError, BlobIntegrityError, BlobNotFound, BlobStore, FolderBlobs
from core.storage.database import DatabaseBlobs
from core.storage.images import ImageStore, StoredImage

__all__ = ["BlobError", "BlobIntegrityError", "BlobNotFound", "BlobStore", "DatabaseBlobs",
           "FolderBlobs", "ImageStore", "StoredImage", "blob_store"]


def blob_store(settings: Settings, sessions: SessionFactory) -> BlobStore:
    """The backend the settings choose: the local folder, or the database every host shares."""
    if settings.storage_backend == "database":
        return DatabaseBlobs(sessions)
    return FolderBlobs(settings.resolved_storage_dir)
