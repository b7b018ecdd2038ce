"""A worker on a host without the version's file fetches it from the shared store, verified."""

import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from core.db import migrate
from core.db.models import Blob
from core.db.session import SessionFactory, make_engine, make_session_factory, transaction
from core.registry import ModelRef, active_model, register_model
from core.settings import DEFAULT_MODEL_PATH
from core.storage import BlobIntegrityError, BlobNotFound, DatabaseBlobs, FolderBlobs
from core.storage.models import ModelFiles
from vision.model.artifact import card_path, read_card, verified_card
from vision.model.classifier import CellClassifier


@pytest.fixture
def sessions(sqlite_url: str) -> SessionFactory:
    migrate.upgrade(sqlite_url)
    return make_session_factory(make_engine(sqlite_url))


def trained_elsewhere(sessions: SessionFactory, tmp_path: Path) -> tuple[ModelRef, Path]:
    """A version written on the training host, published, registered, then gone from here."""
    weights = tmp_path / "trainer" / DEFAULT_MODEL_PATH.name
    weights.parent.mkdir()
    shutil.copy(DEFAULT_MODEL_PATH, weights)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(weights))
    ModelFiles(DatabaseBlobs(sessions), tmp_path / "trainer-cache", sessions).publish(weights)
    register_model(sessions, verified_card(weights), str(weights))
    shutil.rmtree(weights.parent)
    ref = active_model(sessions)
    assert ref is not None
    return ref, weights


def test_a_host_without_the_file_fetches_verifies_and_loads_it(
        sessions: SessionFactory, tmp_path: Path) -> None:
    ref, _ = trained_elsewhere(sessions, tmp_path)
    files = ModelFiles(DatabaseBlobs(sessions), tmp_path / "cache", sessions)
    path = files.local_path(ref)
    assert path == tmp_path / "cache" / "models" / f"{ref.sha256}.safetensors"
    assert read_card(path).version == ref.version
    classifier = CellClassifier.from_artifact(path, "cpu")
    assert classifier.card.sha256 == ref.sha256


def test_the_local_cache_is_used_again_and_refetched_when_damaged(
        sessions: SessionFactory, tmp_path: Path) -> None:
    ref, _ = trained_elsewhere(sessions, tmp_path)
    files = ModelFiles(DatabaseBlobs(sessions), tmp_path / "cache", sessions)
    path = files.local_path(ref)
    path.write_bytes(b"truncated")
    assert files.local_path(ref) == path
    assert verified_card(path).sha256 == ref.sha256


def test_corrupted_weights_in_the_shared_store_are_refused_and_nothing_is_cached(
        sessions: SessionFactory, tmp_path: Path) -> None:
    ref, _ = trained_elsewhere(sessions, tmp_path)
    with transaction(sessions) as session:
        session.execute(update(Blob).where(Blob.sha256 == ref.sha256).values(data=b"garbage"))
    files = ModelFiles(DatabaseBlobs(sessions), tmp_path / "cache", sessions)
    with pytest.raises(BlobIntegrityError, match="corrupted"):
        files.local_path(ref)
    assert not (tmp_path / "cache" / "models" / f"{ref.sha256}.safetensors").exists()


def test_one_host_needs_no_copy_of_its_own_files(sessions: SessionFactory,
                                                  tmp_path: Path) -> None:
    files = ModelFiles(FolderBlobs(tmp_path / "images"), tmp_path / "cache", sessions)
    files.publish(DEFAULT_MODEL_PATH)
    assert not (tmp_path / "images").exists()
    register_model(sessions, verified_card(DEFAULT_MODEL_PATH), str(DEFAULT_MODEL_PATH))
    ref = active_model(sessions)
    assert ref is not None and files.local_path(ref) == DEFAULT_MODEL_PATH


def test_a_version_nowhere_to_be_found_is_a_clear_error(sessions: SessionFactory,
                                                        tmp_path: Path) -> None:
    ref, _ = trained_elsewhere(sessions, tmp_path)
    with transaction(sessions) as session:
        session.execute(Blob.__table__.delete())
    with pytest.raises(BlobNotFound, match=ref.sha256[:12]):
        ModelFiles(DatabaseBlobs(sessions), tmp_path / "cache", sessions).local_path(ref)
