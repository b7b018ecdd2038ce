"""The sweep's data packing: every part a fair sample of the classes, val in the last."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from benchmarks.device_sweep import pack
from tests.conftest import fixture_image_folder
from vision.labels import PBC_CLASSES


def test_each_part_holds_every_class_and_the_last_holds_val(tmp_path: Path) -> None:
    pbc = tmp_path / "pbc"
    for split in ("train", "val"):
        fixture_image_folder(pbc / split)
    for path in list((pbc / "train").glob("*/*.jpg")):  # three cells a class
        for copy in ("b", "c"):
            shutil.copy(path, path.with_name(f"{copy}-{path.name}"))
    parts = [tmp_path / "partA", tmp_path / "partB"]

    pack(pbc, parts, train_images=24, val_images=8)

    names = [zipfile.ZipFile(part / "part.zip").namelist() for part in parts]
    for listed in names:
        classes = {name.split("/")[2] for name in listed if name.startswith("pbc/train/")}
        assert classes == set(PBC_CLASSES)
    assert sum(name.startswith("pbc/train/") for listed in names for name in listed) == 24
    assert [sum(n.startswith("pbc/val/") for n in listed) for listed in names] == [0, 8]
