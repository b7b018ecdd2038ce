"""The training pipeline end to end on a handful of real cells: it learns, resumes, and ships."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import fixture_image_folder, pbc_fixtures
from vision.labels import PBC_CLASSES
from vision.model.artifact import load_artifact, save_artifact
from vision.model.classifier import CellClassifier
from vision.training.config import Phase, TrainConfig
from vision.training.finetune import fine_tune, initial_model
from vision.training.pipeline import run_training


def image_folder_tree(root: Path) -> Path:
    """train/val/test ImageFolder trees made of the eight fixture cells."""
    for split in ("train", "val", "test"):
        fixture_image_folder(root / split)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("train")
    data = image_folder_tree(root / "data")
    config = TrainConfig(version="tiny", batch_size=8, drop_path=0.0, dropout=0.0,
                         label_smoothing=0.0, phases=[Phase(epochs=4, resolution=96, lr=3e-3)])
    lines: list[str] = []
    out = root / "tiny.safetensors"
    run_training(data, out, root / "run", root / "cache", config, lines.append)
    return out, root, lines


def test_the_loss_falls_while_training(trained: tuple[Path, Path, list[str]]) -> None:
    _, card, _ = load_artifact(trained[0])
    losses = [epoch["train_loss"] for epoch in card.training["history"]]
    assert len(losses) == 4
    assert losses[-1] < losses[0]


def test_progress_reports_epochs_loss_accuracy_and_eta(
    trained: tuple[Path, Path, list[str]],
) -> None:
    lines = trained[2]
    assert any("epoch 1/4" in line and "loss" in line and "ETA" in line for line in lines)
    assert any("val accuracy" in line and "min left" in line for line in lines)


def test_the_card_records_calibration_rejection_and_robustness(
    trained: tuple[Path, Path, list[str]],
) -> None:
    _, card, detector = load_artifact(trained[0])
    assert card.temperature > 0
    assert {"accuracy", "macro_f1", "ece", "ece_before_temperature"} <= set(card.metrics["test"])
    assert {"false_accept_rate", "false_reject_rate_test"} <= set(card.metrics["rejection"])
    assert "defocus" in card.metrics["robustness"]
    assert len(card.data["train_manifest_sha256"]) == 64
    assert detector is not None


def test_a_finished_run_resumes_without_training_again(
    trained: tuple[Path, Path, list[str]],
) -> None:
    _, root, _ = trained
    config = TrainConfig(version="tiny", batch_size=8,
                         phases=[Phase(epochs=4, resolution=96, lr=3e-3)])
    lines: list[str] = []
    run_training(root / "data", root / "again.safetensors", root / "run", root / "cache",
                 config, lines.append)
    assert any("resuming at epoch 5" in line for line in lines)
    assert not any(line.startswith("epoch ") for line in lines)


def test_the_card_says_where_the_epochs_ran(trained: tuple[Path, Path, list[str]]) -> None:
    _, card, _ = load_artifact(trained[0])
    assert "CPU threads" in card.training["machine"]


def test_a_run_finished_elsewhere_keeps_its_machine_in_the_card(
    trained: tuple[Path, Path, list[str]], tmp_path: Path,
) -> None:
    # A run trained on a GPU machine and evaluated here reports the GPU, not this CPU.
    _, root, _ = trained
    shutil.copytree(root / "run", tmp_path / "run")
    header = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    (tmp_path / "run" / "checkpoint.json").write_text(
        json.dumps({**header, "device": "GPU NVIDIA H200, torch 2.11.0"}))
    config = TrainConfig(version="tiny", batch_size=8,
                         phases=[Phase(epochs=4, resolution=96, lr=3e-3)])
    card = run_training(root / "data", tmp_path / "elsewhere.safetensors", tmp_path / "run",
                        root / "cache", config, lambda _: None)
    assert card.training["machine"] == "GPU NVIDIA H200, torch 2.11.0"
    assert card.training["history"] == header["history"]


def test_a_run_goes_on_from_a_trained_model_at_a_larger_crop(
    trained: tuple[Path, Path, list[str]], tmp_path: Path,
) -> None:
    model_path, root, _ = trained
    parent, _, _ = load_artifact(model_path)
    config = TrainConfig(version="tiny-larger", batch_size=8, init_from=model_path,
                         serving_resolution=128, phases=[Phase(epochs=1, resolution=128, lr=1e-3)])
    started = initial_model(config, None)
    assert all(torch.equal(value, parent.state_dict()[key])
               for key, value in started.state_dict().items())

    card = run_training(root / "data", tmp_path / "larger.safetensors", tmp_path / "run",
                        root / "cache", config, lambda _: None)
    # Served as trained: the card's preprocessing makes the 128 px view of the larger cache.
    assert (card.preprocessing["resize"], card.preprocessing["crop"]) == (146, 128)
    assert card.training["config"]["init_from"] == str(model_path)
    classifier = CellClassifier.from_artifact(tmp_path / "larger.safetensors", device="cpu")
    with Image.open(pbc_fixtures()["eosinophil"]) as image:
        assert classifier.preprocess.batch([image]).shape == (1, 3, 128, 128)


def test_on_the_cpu_a_recipe_may_train_under_bf16_and_still_learns_in_fp32(
    trained: tuple[Path, Path, list[str]], tmp_path: Path,
) -> None:
    root = trained[1]
    config = TrainConfig(version="tiny-bf16", batch_size=8, drop_path=0.0, dropout=0.0,
                         label_smoothing=0.0, cpu_bf16=True,
                         phases=[Phase(epochs=4, resolution=96, lr=3e-3)])
    result = fine_tune(root / "data", tmp_path / "run", root / "cache", config,
                       progress=lambda _: None, splits_to_load=("train", "val"))
    losses = [epoch["train_loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}


def test_a_recipe_may_keep_the_normalisation_statistics_it_starts_with(
    trained: tuple[Path, Path, list[str]], tmp_path: Path,
) -> None:
    model_path, root, _ = trained
    config = TrainConfig(version="tiny-frozen-stats", batch_size=8, init_from=model_path,
                         frozen_norm_statistics=True, serving_resolution=96,
                         phases=[Phase(epochs=1, resolution=96, lr=1e-2)])
    before = {k: v.clone() for k, v in initial_model(config, None).state_dict().items()}
    result = fine_tune(root / "data", tmp_path / "run", root / "cache", config,
                       progress=lambda _: None, splits_to_load=("train", "val"))
    after = result.model.state_dict()
    statistics = [k for k in before if k.endswith(("running_mean", "running_var"))]
    learnt = [k for k in before if k.endswith(".weight") and not k.startswith("classifier")]
    assert statistics and all(torch.equal(before[k], after[k]) for k in statistics)
    assert any(not torch.equal(before[k], after[k]) for k in learnt)


def test_going_on_from_a_model_with_other_classes_is_refused(
    trained: tuple[Path, Path, list[str]], tmp_path: Path,
) -> None:
    model, card, _ = load_artifact(trained[0])
    other = tmp_path / "other.safetensors"
    save_artifact(model, card.model_copy(update={"classes": [c.upper() for c in card.classes]}),
                  other)
    with pytest.raises(ValueError, match="predicts"):
        initial_model(TrainConfig(init_from=other), None)


def test_a_recipe_naming_an_unknown_network_is_refused_when_read(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"version": "x", "architecture": "efficientnet_lite3"}))
    with pytest.raises(ValueError, match="unknown architecture; known: efficientnet_lite0"):
        TrainConfig.from_file(recipe)


def test_going_on_from_a_model_of_another_architecture_is_refused(
    trained: tuple[Path, Path, list[str]],
) -> None:
    config = TrainConfig(init_from=trained[0], architecture="efficientnet_lite2")
    with pytest.raises(ValueError, match="is efficientnet_lite0, but the recipe asks for"):
        initial_model(config, None)


def test_a_larger_lite_network_trains_from_imagenet_and_ships_as_itself(tmp_path: Path) -> None:
    data = image_folder_tree(tmp_path / "data")
    config = TrainConfig(version="tiny-lite1", architecture="efficientnet_lite1", batch_size=8,
                         phases=[Phase(epochs=1, resolution=64, lr=1e-3)])
    card = run_training(data, tmp_path / "lite1.safetensors", tmp_path / "run",
                        tmp_path / "cache", config, lambda _: None)
    assert card.architecture == "efficientnet_lite1"
    classifier = CellClassifier.from_artifact(tmp_path / "lite1.safetensors", device="cpu")
    assert len(classifier.model.blocks) == 21  # Lite0 has 16
    with Image.open(pbc_fixtures()["eosinophil"]) as image:
        probabilities = classifier.probabilities([image])
    assert probabilities.shape == (1, 8)
    assert torch.allclose(probabilities.sum(1), torch.ones(1))


def test_another_laboratorys_cells_join_the_train_split_as_often_as_the_recipe_says(
    tmp_path: Path,
) -> None:
    from vision.training.config import ExtraSource
    from vision.training.finetune import load_split, with_extra_sources

    data = image_folder_tree(tmp_path / "data")
    other = tmp_path / "other" / "train"
    for label in ("Neutrophil", "lymphocyte"):  # a subset of the classes, any case
        (other / label).mkdir(parents=True)
        shutil.copy(pbc_fixtures()[label.lower()], other / label / "cell.jpg")
    train = load_split(data, "train", tmp_path / "cache", None, 0, print, PBC_CLASSES)
    joined = with_extra_sources(train, [ExtraSource(root=other, repeat=3)], tmp_path / "cache",
                                0, print, 224, PBC_CLASSES)
    assert len(joined.samples) == len(train.samples) + 6
    assert joined.images.shape[0] == joined.labels.shape[0] == len(joined.samples)
    extra_labels = sorted(joined.labels[len(train.samples):].tolist())
    assert extra_labels == sorted([4, 6] * 3)  # lymphocyte, neutrophil


def test_a_recipe_carries_its_augmentation_and_extra_sources(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"augment": {"hue": 0.3, "zoom": 0.25},
                                  "extra_train": [{"root": "cells/train", "repeat": 4}]}))
    config = TrainConfig.from_file(recipe)
    assert config.augment.hue == 0.3 and config.augment.zoom == 0.25
    assert config.augment.p_blur == 0.3  # the rest keep their defaults
    assert config.extra_train[0].root == Path("cells/train")
    assert config.extra_train[0].repeat == 4
