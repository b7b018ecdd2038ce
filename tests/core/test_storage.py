from pathlib import Path

import pytest
from PIL import Image

from core.storage import ImageStore
from tests.conftest import jpeg_bytes


def test_images_are_stored_by_content_hash_and_read_back(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    image = Image.effect_noise((50, 40), 30).convert("RGB")
    stored = store.put(image)
    assert stored.path == tmp_path / stored.sha256[:2] / stored.sha256[2:4] / f"{stored.sha256}.png"
    assert store.open(stored.sha256).tobytes() == image.tobytes()


def test_storing_the_same_image_twice_gives_one_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    image = Image.new("RGB", (32, 32), "red")
    assert store.put(image) == store.put(image.copy())
    assert len(list(tmp_path.rglob("*.png"))) == 1


@pytest.mark.parametrize("name", ["../../etc/passwd", "g" * 64, "ABC", ""])
def test_paths_never_come_from_arbitrary_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        ImageStore(tmp_path).path_for(name)


def test_stored_files_carry_no_metadata(tmp_path: Path) -> None:
    stored = ImageStore(tmp_path).put(Image.new("RGB", (32, 32)))
    with Image.open(stored.path) as reopened:
        assert len(reopened.getexif()) == 0
        assert set(reopened.info) <= {"dpi"}


def test_encoded_bytes_are_stored_as_they_are_and_found_by_digest(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = jpeg_bytes(Image.effect_noise((40, 30), 30).convert("RGB"))
    stored = store.put_encoded(data, "jpg")
    assert stored.path.suffix == ".jpg" and stored.path.read_bytes() == data
    assert store.path_for(stored.sha256) == stored.path and store.exists(stored.sha256)
    assert store.open(stored.sha256).size == (40, 30)


def test_a_picture_for_display_is_a_jpeg(tmp_path: Path) -> None:
    stored = ImageStore(tmp_path).put(Image.new("RGB", (64, 48), "red"), for_display=True)
    with Image.open(stored.path) as reopened:
        assert reopened.format == "JPEG" and len(reopened.getexif()) == 0
