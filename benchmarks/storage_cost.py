"""What the shared store costs per photo, against the local folder, in one run.

    python -m benchmarks.storage_cost [--repeats 10] [--pg postgresql://postgres@127.0.0.1/postgres]

Times, median of ``--repeats``, on this machine: storing (put, with its SHA-256) and fetching
(get, verified by its SHA-256) a Telegram-sized photo (1280 x 960 JPEG), a 12 MP phone photo,
the 12 MP photo's annotated picture (JPEG q90, full chroma) and one model's weights, in the
local folder and in PostgreSQL (a fresh database on the local server, over TCP).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.db import migrate
from core.db.session import make_engine, make_session_factory
from core.settings import DEFAULT_MODEL_PATH
from core.storage import BlobStore, DatabaseBlobs, FolderBlobs
from core.storage.blobs import Kind
from devkit.harness import fresh_postgres_database

FIELD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bccd"


def _jpeg(size: tuple[int, int], **options: object) -> bytes:
    with Image.open(sorted(FIELD.glob("*.jpg"))[0]) as field:
        big = np.asarray(field.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float32)
    # Sensor noise, so the file is as large as a phone's (an upscaled field compresses to a
    # fifth of that).
    noisy = big + np.random.default_rng(0).normal(0, 4, big.shape)
    buffer = io.BytesIO()
    big = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    big.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _median_ms(action: Callable[[int], object], repeats: int) -> float:
    times = []
    for number in range(repeats):
        started = time.perf_counter()
        action(number)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _costs(blobs: BlobStore, data: bytes, kind: Kind, repeats: int) -> tuple[float, float]:
    # Distinct bytes for every put (a decoder ignores bytes after a JPEG's end), so none is a
    # no-op on content already stored.
    variants = [data + number.to_bytes(4, "big") for number in range(repeats)]
    put = _median_ms(lambda n: blobs.put(variants[n], kind), repeats)
    stored = blobs.put(data, kind)
    get = _median_ms(lambda _n: blobs.get(stored), repeats)
    return put, get


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    files: list[tuple[str, bytes, Kind]] = [
        ("photo 1280 x 960", _jpeg((1280, 960), quality=90), "jpg"),
        ("photo 12 MP", _jpeg((4000, 3000), quality=90), "jpg"),
        ("annotated 12 MP", _jpeg((4000, 3000), quality=90, subsampling=0), "jpg"),
        ("model weights", DEFAULT_MODEL_PATH.read_bytes(), "safetensors"),
    ]
    with contextlib.ExitStack() as resources:
        url = resources.enter_context(fresh_postgres_database(args.pg))
        migrate.upgrade(url)
        engine = make_engine(url)
        resources.callback(engine.dispose)
        folder = resources.enter_context(tempfile.TemporaryDirectory())
        backends: list[tuple[str, BlobStore]] = [
            ("local folder", FolderBlobs(Path(folder))),
            ("PostgreSQL", DatabaseBlobs(make_session_factory(engine)))]
        print(f"median of {args.repeats}; put = store with its SHA-256, get = fetch and verify")
        print("| file | size | folder put | folder get | PostgreSQL put | PostgreSQL get |")
        print("|---|---|---|---|---|---|")
        for name, data, kind in files:
            cells = []
            for _backend, blobs in backends:
                put, get = _costs(blobs, data, kind, args.repeats)
                cells += [f"{put:.1f} ms", f"{get:.1f} ms"]
            print(f"| {name} | {len(data) / 1e6:.2f} MB | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
