"""What storing, reopening and answering one photo costs, old way against new, in one run.

    python -m benchmarks.photo_costs [--repeats 15]

For a field photo as Telegram delivers it (a BCCD field upscaled to 1280 x 960, JPEG q90) and a
12 MP phone photo (4000 x 3000), it times, in this process on one thread:
- the bot's intake: decode and store a lossless PNG (before) or keep the sender's JPEG less its
  metadata (now);
- the worker reopening the stored image: PNG (before) or JPEG (now);
- writing the annotated picture: PNG (before) or JPEG q90 (now);
- the white-cell detector's hole filling and lobe joining: scipy's ``binary_fill_holes`` and
  ``binary_dilation`` with a radius-9 disk (before), labelling and the distance transform (now;
  the same masks, tested).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.morphology import disk

from core.intake import open_image
from core.settings import DEFAULT_MODEL_PATH
from core.storage import FolderBlobs, ImageStore
from vision.field.analyse import analyse
from vision.field.annotate import annotate
from vision.field.detect import (
    DetectorParams,
    dilate_by_disk,
    field_masks,
    fill_holes,
    working_image,
)
from vision.field.scale import image_scale
from vision.model.classifier import CellClassifier

FIELD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bccd"
LIMITS = {"max_pixels": 60_000_000, "max_bytes": 20_000_000}


def _photo(size: tuple[int, int]) -> bytes:
    with Image.open(sorted(FIELD.glob("*.jpg"))[0]) as field:
        big = field.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    params = DetectorParams()
    print("| photo | step | before | now |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        store = ImageStore(FolderBlobs(Path(root)))
        for name, size in (("1280 x 960", (1280, 960)), ("12 MP", (4000, 3000))):
            data = _photo(size)
            clean = open_image(data, **LIMITS)
            assert clean.encoded_jpeg is not None
            png = store.put(clean.image).sha256
            jpg = store.put_encoded(clean.encoded_jpeg, "jpg").sha256
            assert store.open(png).tobytes() == store.open(jpg).tobytes()  # same pixels
            picture = annotate(clean.image, analyse(clean.image, classifier))
            work, _ = working_image(clean.image, image_scale(clean.image).red_cell_px)
            nucleus = field_masks(np.asarray(work, dtype=np.float32),
                                  params).purple > params.nucleus_violet

            def morphology_before(nucleus: np.ndarray = nucleus) -> object:
                filled = ndi.binary_fill_holes(nucleus)
                return ndi.binary_dilation(filled, structure=disk(params.lobe_join_radius))

            def morphology_now(nucleus: np.ndarray = nucleus) -> object:
                return dilate_by_disk(fill_holes(nucleus), params.lobe_join_radius)


            def intake_before(data: bytes = data) -> object:
                return store.put(open_image(data, **LIMITS).image)

            def intake_now(data: bytes = data) -> object:
                opened = open_image(data, **LIMITS)
                assert opened.encoded_jpeg is not None
                return store.put_encoded(opened.encoded_jpeg, "jpg")

            rows = [
                ("bot intake: check and store", intake_before, intake_now),
                ("worker: reopen stored photo",
                 lambda sha=png: store.open(sha), lambda sha=jpg: store.open(sha)),
                ("worker: write annotated picture",
                 lambda p=picture: store.put(p), lambda p=picture: store.put(p, for_display=True)),
                ("worker: fill nuclei, join lobes", morphology_before, morphology_now),
            ]
            for step, before, now in rows:
                print(f"| {name} | {step} | {_ms(before, args.repeats):.0f} ms "
                      f"| {_ms(now, args.repeats):.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
