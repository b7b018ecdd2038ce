from pathlib import Path

import pytest
from PIL import Image

from core.storage import ImageStore


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
