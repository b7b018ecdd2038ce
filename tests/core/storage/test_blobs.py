"""Both backends keep the same promises: content-addressed, idempotent, verified on read."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from core.db import migrate
from core.db.models import Blob
from core.db.session import make_engine, make_session_factory, transaction
from core.storage import (
    BlobIntegrityError,
    BlobNotFound,
    BlobStore,
    DatabaseBlobs,
    FolderBlobs,
)

DATA = b"\x89PNG pretend image bytes" * 100
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(params=["folder", "sqlite", "postgresql"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "folder":
        yield FolderBlobs(tmp_path / "blobs")
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate.upgrade(url)
    engine = make_engine(url)
    yield DatabaseBlobs(make_session_factory(engine))
    engine.dispose()


def corrupt(blobs: BlobStore, sha256: str) -> None:
    """Flip the stored bytes behind the store's back, as a failing disk or a hand would."""
    if isinstance(blobs, FolderBlobs):
        path = blobs.path_of(sha256)
        assert path is not None
        path.write_bytes(b"X" + path.read_bytes()[1:])
    else:
        assert isinstance(blobs, DatabaseBlobs)
        with transaction(blobs.sessions) as session:
            session.execute(update(Blob).where(Blob.sha256 == sha256).values(data=b"X" + DATA[1:]))


def test_a_blob_is_named_by_its_sha256_and_read_back(blobs: BlobStore) -> None:
    assert not blobs.exists(SHA)
    assert blobs.put(DATA, "png") == SHA
    assert blobs.exists(SHA) and blobs.get(SHA) == DATA


def test_storing_the_same_bytes_twice_is_one_blob(blobs: BlobStore) -> None:
    assert blobs.put(DATA, "png") == blobs.put(bytes(DATA), "png") == SHA
    assert blobs.get(SHA) == DATA


def test_a_missing_blob_is_a_clear_error(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match=SHA[:12]):
        blobs.get(SHA)


def test_a_corrupted_blob_is_refused_by_its_hash(blobs: BlobStore) -> None:
    blobs.put(DATA, "png")
    corrupt(blobs, SHA)
    with pytest.raises(BlobIntegrityError, match="does not match its SHA-256"):
        blobs.get(SHA)


@pytest.mark.parametrize("name", ["../../etc/passwd", "g" * 64, "ABC", ""])
def test_names_are_only_ever_digests(blobs: BlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        blobs.get(name)


def test_only_the_database_is_shared_between_hosts(tmp_path: Path, sqlite_url: str) -> None:
    assert not FolderBlobs(tmp_path).shared
    assert DatabaseBlobs(make_session_factory(make_engine(sqlite_url))).shared


def test_a_deleted_blob_is_gone_and_deleting_again_says_so(blobs: BlobStore) -> None:
    blobs.put(DATA, "png")
    assert blobs.delete(SHA) and not blobs.exists(SHA)
    assert not blobs.delete(SHA)


def test_a_corrupted_blob_is_repaired_by_storing_the_same_bytes_again(blobs: BlobStore) -> None:
    blobs.put(DATA, "png")
    corrupt(blobs, SHA)
    assert blobs.put(DATA, "png") == SHA  # the same photo sent again
    assert blobs.get(SHA) == DATA
