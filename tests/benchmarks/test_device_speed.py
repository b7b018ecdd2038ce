"""The GPU speed check measures either the shipped model or a training run's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.device_speed import _model, compare
from core.settings import DEFAULT_MODEL_PATH
from tests.conftest import fixture_image_folder
from vision.model.artifact import read_card
from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.checkpoint import save_checkpoint


def test_a_training_checkpoint_is_measured_with_its_own_weights(tmp_path: Path) -> None:
    trained = EfficientNetLite(num_classes=8).eval()
    save_checkpoint(tmp_path, trained, torch.optim.AdamW(trained.parameters()),
                    {"config": {"serving_resolution": 288}})
    model, preprocess = _model(tmp_path / "checkpoint.safetensors", torch.device("cpu"))
    assert (preprocess.resize, preprocess.crop) == (329, 288)  # the run's own view
    x = torch.randn(2, 3, preprocess.crop, preprocess.crop)
    with torch.inference_mode():
        assert torch.allclose(model(x), trained(x), atol=1e-5)


def test_without_a_checkpoint_the_shipped_model_is_measured() -> None:
    model, preprocess = _model(None, torch.device("cpu"))
    assert preprocess == read_card(DEFAULT_MODEL_PATH).preprocess
    assert model.classifier.out_features == 8


def test_comparing_precisions_classifies_a_whole_split_as_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    folder = fixture_image_folder(tmp_path / "test")
    model, preprocess = _model(None, torch.device("cpu"))
    # On a CPU only fp32 runs; the batch of 3 splits the 8 cells over several passes.
    compare(model, preprocess, folder, torch.device("cpu"), {"fp32": None}, batch=3)
    out = capsys.readouterr().out
    assert f"{folder}: 8 cells" in out
    assert "fp32: accuracy 1.0000, labels differing from fp32 0" in out
