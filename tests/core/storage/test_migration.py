"""An existing one-host deployment moves into the shared store once, verified, idempotently."""

import shutil
from pathlib import Path

from PIL import Image

from core.db import migrate
from core.db.session import make_engine, make_session_factory
from core.registry import register_model
from core.settings import DEFAULT_MODEL_PATH
from core.storage import DatabaseBlobs, FolderBlobs, ImageStore
from core.storage.migration import migrate_to_shared
from vision.model.artifact import card_path, verified_card


def test_images_and_models_move_once_and_every_hash_is_checked(postgres_url: str,
                                                               tmp_path: Path) -> None:
    migrate.upgrade(postgres_url)
    sessions = make_session_factory(make_engine(postgres_url))
    local = ImageStore(FolderBlobs(tmp_path / "images"))
    photos = [local.put(Image.new("RGB", (20, 10), colour)).sha256 for colour in ("red", "blue")]
    weights = tmp_path / "models" / "v1.safetensors"
    weights.parent.mkdir()
    shutil.copy(DEFAULT_MODEL_PATH, weights)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(weights))
    card = verified_card(weights)
    register_model(sessions, card, str(weights))
    # A file damaged on disk is reported and left behind, not copied.
    damaged = local.put(Image.new("RGB", (20, 10), "green")).sha256
    path = FolderBlobs(tmp_path / "images").path_of(damaged)
    assert path is not None
    path.write_bytes(b"not what it was")

    shared = DatabaseBlobs(sessions)
    first = migrate_to_shared(tmp_path / "images", sessions, shared)
    assert (first.copied, first.already_there) == (3, 0)
    assert first.corrupt == [str(path)] and not first.ok
    assert all(shared.exists(sha) for sha in [*photos, card.sha256])
    assert not shared.exists(damaged)
    assert shared.get(photos[0]) == local.read(photos[0])

    again = migrate_to_shared(tmp_path / "images", sessions, shared)
    assert (again.copied, again.already_there) == (0, 3)
