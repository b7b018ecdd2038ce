import io
from pathlib import Path

from PIL import Image

from core.storage import FolderBlobs, ImageStore
from tests.conftest import jpeg_bytes


def folder_store(root: Path) -> tuple[ImageStore, FolderBlobs]:
    blobs = FolderBlobs(root)
    return ImageStore(blobs), blobs


def test_images_are_stored_by_content_hash_and_read_back(tmp_path: Path) -> None:
    store, blobs = folder_store(tmp_path)
    image = Image.effect_noise((50, 40), 30).convert("RGB")
    stored = store.put(image)
    assert blobs.path_of(stored.sha256) == (
        tmp_path / stored.sha256[:2] / stored.sha256[2:4] / f"{stored.sha256}.png")
    assert store.open(stored.sha256).tobytes() == image.tobytes()


def test_storing_the_same_image_twice_gives_one_file(tmp_path: Path) -> None:
    store, _ = folder_store(tmp_path)
    image = Image.new("RGB", (32, 32), "red")
    assert store.put(image) == store.put(image.copy())
    assert len(list(tmp_path.rglob("*.png"))) == 1


def test_stored_files_carry_no_metadata(tmp_path: Path) -> None:
    store, _ = folder_store(tmp_path)
    stored = store.put(Image.new("RGB", (32, 32)))
    with Image.open(io.BytesIO(store.read(stored.sha256))) as reopened:
        assert len(reopened.getexif()) == 0
        assert set(reopened.info) <= {"dpi"}


def test_encoded_bytes_are_stored_as_they_are_and_found_by_digest(tmp_path: Path) -> None:
    store, blobs = folder_store(tmp_path)
    data = jpeg_bytes(Image.effect_noise((40, 30), 30).convert("RGB"))
    stored = store.put_encoded(data, "jpg")
    path = blobs.path_of(stored.sha256)
    assert path is not None and path.suffix == ".jpg" and path.read_bytes() == data
    assert store.exists(stored.sha256) and store.read(stored.sha256) == data
    assert store.open(stored.sha256).size == (40, 30)


def test_a_picture_for_display_is_a_jpeg(tmp_path: Path) -> None:
    store, _ = folder_store(tmp_path)
    stored = store.put(Image.new("RGB", (64, 48), "red"), for_display=True)
    with Image.open(io.BytesIO(store.read(stored.sha256))) as reopened:
        assert reopened.format == "JPEG" and len(reopened.getexif()) == 0


def test_a_photo_stored_with_its_orientation_opens_upright(tmp_path: Path) -> None:
    store, _ = folder_store(tmp_path)
    landscape = Image.new("RGB", (120, 60), "white")
    landscape.paste((20, 20, 200), (0, 0, 30, 60))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90° clockwise to display
    stored = store.put_encoded(jpeg_bytes(landscape, exif=exif.tobytes()), "jpg")
    upright = store.open(stored.sha256)
    assert upright.size == (60, 120)
    red, _green, blue = upright.getpixel((30, 5))  # the blue stripe is now on top
    assert blue > red
