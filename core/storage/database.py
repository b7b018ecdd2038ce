"""The shared backend: blobs in their own table of the database every host already reaches.

Chosen over an object store because a deployment then needs nothing new: the files are covered
by the database's backups and credentials, and a blob is committed before any row can name it.
Photos are capped at Telegram's 20 MB and weights are about 15 MB, far below PostgreSQL's 1 GB
per value, and every reader needs the whole file in memory to decode it anyway.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from core.db.models import Blob
from core.db.session import SessionFactory, transaction
from core.storage.blobs import BlobNotFound, Kind, check_digest, sha256_of, verified


class DatabaseBlobs:
    shared = True

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    def put(self, data: bytes, kind: Kind) -> str:
        digest = sha256_of(data)
        with self.sessions() as session:
            stored = session.scalar(select(Blob.data).where(Blob.sha256 == digest))
        if stored is not None:
            if sha256_of(bytes(stored)) != digest:  # a damaged row: repaired by the same bytes
                with transaction(self.sessions) as session:
                    session.execute(update(Blob).where(Blob.sha256 == digest)
                                    .values(data=data, size=len(data)))
            return digest
        try:
            with transaction(self.sessions) as session:
                session.add(Blob(sha256=digest, kind=kind, size=len(data), data=data))
        except IntegrityError:
            pass  # another process stored the same bytes first: the same blob
        return digest

    def get(self, sha256: str) -> bytes:
        check_digest(sha256)
        with self.sessions() as session:
            data = session.scalar(select(Blob.data).where(Blob.sha256 == sha256))
        if data is None:
            raise BlobNotFound(f"no stored file {sha256[:12]}… in the database")
        return verified(sha256, bytes(data), "the database")

    def exists(self, sha256: str) -> bool:
        check_digest(sha256)
        with self.sessions() as session:
            return session.scalar(select(Blob.sha256).where(Blob.sha256 == sha256)) is not None

    def delete(self, sha256: str) -> bool:
        check_digest(sha256)
        with transaction(self.sessions) as session:
            removed = session.scalars(delete(Blob).where(Blob.sha256 == sha256)
                                      .returning(Blob.sha256)).all()
        return bool(removed)
