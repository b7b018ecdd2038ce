"""Moving a GPU run's weights back through the lent machine's file limits, and finishing it here."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from benchmarks import device_training
from core.model.efficientnet_lite import EfficientNetLite
from core.model.imagenet import load_imagenet
from core.training.checkpoint import save_checkpoint
from core.training.config import Phase, TrainConfig
from core.training.finetune import fine_tune
from tests.conftest import fixture_image_folder


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    model = EfficientNetLite(num_classes=8)
    optimiser = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    optimiser.step()  # so the checkpoint carries optimiser moments, which must not travel
    save_checkpoint(tmp_path / "run", model, optimiser,
                    {"next_epoch": 3, "history": [{"epoch": 3}], "device": "GPU test"})
    return tmp_path / "run"


def test_exported_parts_join_back_into_the_same_weights_and_header(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small parts make more than ten of them, so part10 must sort after part9.
    monkeypatch.setattr(device_training, "PART_BYTES", 1_000_000)
    (tmp_path / "out").mkdir()
    device_training._export(finished_run, "candidate", tmp_path / "out")
    parts = list((tmp_path / "out").glob("candidate.part*"))
    assert len(parts) > 10
    assert all(p.stat().st_size <= 1_000_000 for p in parts)

    device_training.unpack(tmp_path / "out", "candidate", tmp_path / "here")
    original = load_file(str(finished_run / "checkpoint.safetensors"))
    joined = load_file(str(tmp_path / "here" / "checkpoint.safetensors"))
    assert set(joined) == {k for k in original if k.startswith("model.")}
    assert all(torch.equal(joined[k], original[k]) for k in joined)
    header = json.loads((tmp_path / "here" / "checkpoint.json").read_text())
    assert header == json.loads((finished_run / "checkpoint.json").read_text())


def test_training_needs_only_train_and_val_when_asked(tmp_path: Path) -> None:
    for split in ("train", "val"):
        fixture_image_folder(tmp_path / "data" / split)
    config = TrainConfig(version="tiny", batch_size=8,
                         phases=[Phase(epochs=1, resolution=64, lr=1e-3)])
    trained = fine_tune(tmp_path / "data", tmp_path / "run", tmp_path / "cache", config,
                        progress=lambda _: None, splits_to_load=("train", "val"))
    assert set(trained.splits) == {"train", "val"}
    assert next(trained.model.parameters()).device.type == "cpu"
    assert "CPU threads" in trained.device


def test_packing_splits_train_byte_for_byte_over_parts_and_puts_val_in_the_last(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    for split in ("train", "val"):
        fixture_image_folder(data / split)
    parts = [tmp_path / name for name in (".gpuA", ".gpuB", ".gpuC")]
    # Nothing fits beside the ImageNet weights in the first part; the second holds 25 kB.
    device_training.pack(data, parts, [0, 25_000], val_images=3,
                         architectures=["efficientnet_lite0", "efficientnet_lite2"])

    for architecture in ("efficientnet_lite0", "efficientnet_lite2"):
        imagenet = torch.load(device_training.imagenet_file(parts[0], architecture),
                              weights_only=True)
        assert {v.dtype for v in imagenet.values() if v.is_floating_point()} == {torch.float16}
        # An initialisation the training loads strictly into its network.
        assert load_imagenet(device_training.imagenet_file(parts[0], architecture),
                             architecture).architecture == architecture
    zips = [zipfile.ZipFile(part / "part.zip") for part in parts]
    names = [set(z.namelist()) for z in zips]
    assert names[0] == set()
    assert 0 < sum(zips[1].getinfo(n).file_size for n in names[1]) <= 25_000
    train = {f"train/{p.parent.name}/{p.name}": p for p in (data / "train").glob("*/*.jpg")}
    assert {n for n in names[1] | names[2] if n.startswith("train/")} == set(train)
    assert not names[1] & names[2]
    assert all(zip_.read(n) == train[n].read_bytes()
               for zip_, part_names in zip(zips[1:], names[1:], strict=True)
               for n in part_names if n.startswith("train/"))
    assert len([n for n in names[2] if n.startswith("val/")]) == 3


def test_choosing_reads_each_run_on_all_of_val_at_its_serving_view(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    for split in ("train", "val"):
        fixture_image_folder(tmp_path / "data" / split)
    config = TrainConfig(version="tiny", batch_size=8, serving_resolution=96,
                         phases=[Phase(epochs=1, resolution=64, lr=1e-3)])
    trained = fine_tune(tmp_path / "data", tmp_path / "run", tmp_path / "cache", config,
                        progress=lambda _: None, splits_to_load=("train", "val"))

    device_training.choose(tmp_path / "data", [tmp_path / "run"], tmp_path / "cache")
    # The weights on disk, read back, score what the run itself recorded for its last epoch.
    recorded = trained.history[-1]["val_accuracy"]
    assert f"tiny @96: val accuracy {recorded:.4f} (" in capsys.readouterr().out
