"""Shared fixtures: real databases (SQLite file, a fresh PostgreSQL database), Redis, data."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from PIL import Image

from devkit import harness

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get("HV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HV_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pbc_fixtures() -> dict[str, Path]:
    """True class -> fixture image, one per PBC class."""
    return {p.name.split("__")[0]: p for p in sorted((FIXTURES / "pbc").glob("*.jpg"))}


def tight_crop(image: Image.Image, share: float = 0.6) -> Image.Image:
    """The middle ``share`` of ``image``: a laboratory that crops its cells tight."""
    side = round(share * min(image.size))
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def shifted_into_black(image: Image.Image, dx: int, dy: int) -> Image.Image:
    """``image`` moved inside its own frame, the bared edges black (as other laboratories'
    shifted crops come)."""
    out = Image.new("RGB", image.size, (0, 0, 0))
    out.paste(image.convert("RGB"), (dx, dy))
    return out


def fixture_image_folder(root: Path, upper: bool = False) -> Path:
    """An ImageFolder tree (``root/<class>/<file>``) of the eight fixture cells."""
    for label, path in pbc_fixtures().items():
        folder = root / (label.upper() if upper else label)
        folder.mkdir(parents=True)
        shutil.copy(path, folder / path.name)
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"data sets not present at {SHARED_DATA} (../shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hv.db'}"


def fresh_postgres_database() -> contextlib.AbstractContextManager[str]:
    """A brand-new, empty PostgreSQL database on the test server, dropped afterwards."""
    return harness.fresh_postgres_database(PG_ADMIN_URL)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on both supported databases."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"Redis is required at {REDIS_URL}; .ci/run starts it") from exc
    return REDIS_URL


def jpeg_bytes(image: Image.Image, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def heic_bytes(image: Image.Image, **save_args: object) -> bytes:
    """A real HEIC file, as an iPhone sends (HEVC-coded by libheif, through pillow-heif)."""
    import core.intake  # noqa: F401  (registers the HEIF plugin with Pillow)

    buffer = io.BytesIO()
    image.save(buffer, format="HEIF", quality=90, **save_args)
    return buffer.getvalue()
