"""Adapting the network's last blocks: only the tail learns, the base answers are replayed, and
the laboratory's cells come back named as its experts named them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from core.settings import DEFAULT_MODEL_PATH
from tests.conftest import fixture_image_folder, pbc_fixtures
from tests.vision.training.test_adapt import stained_elsewhere
from vision.model.artifact import ModelCard, load_artifact
from vision.model.classifier import CellClassifier
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.rejection import OodDetector
from vision.training.tail import (
    TailConfig,
    adapt_tail,
    base_replay,
    cell_views,
    fit_tail,
    replay_cells,
    tail_logits,
    trunk,
)

SMALL = TailConfig(views=3, steps=4, batch=4)


Base = tuple[EfficientNetLite, ModelCard, OodDetector | None]


@pytest.fixture(scope="module")
def base() -> Base:
    return load_artifact(DEFAULT_MODEL_PATH)


def test_the_trunk_and_tail_together_are_the_whole_network(base: Base) -> None:
    model, card, _ = base
    x = card.preprocess.batch([stained_elsewhere(Image.open(pbc_fixtures()["monocyte"]))])
    with torch.no_grad():
        assert torch.allclose(tail_logits(model.eval(), trunk(model, x, 4), 4), model(x),
                              atol=1e-4)


def test_views_put_the_serving_view_first_and_augment_the_rest(base: Base) -> None:
    model, card, _ = base
    cell = Image.open(pbc_fixtures()["eosinophil"]).convert("RGB")
    views = cell_views(model, [cell], card.preprocess, SMALL, lambda _: None)
    assert views.shape[:2] == (1, 3)
    served = trunk(model, card.preprocess.batch([cell]), SMALL.blocks)
    assert torch.allclose(views[0, 0], served[0], atol=1e-4)
    assert not torch.allclose(views[0, 1], views[0, 0], atol=1e-2)


def test_only_the_tail_learns_and_the_base_model_is_left_untouched(base: Base) -> None:
    model, card, _ = base
    cells = [stained_elsewhere(Image.open(pbc_fixtures()[label])) for label in
             ("neutrophil", "basophil")]
    views = cell_views(model, cells, card.preprocess, SMALL, lambda _: None)
    replayed = [Image.open(path).convert("RGB") for path in pbc_fixtures().values()]
    replayed_labels = torch.tensor([card.classes.index(label) for label in pbc_fixtures()])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = fit_tail(model, views, torch.tensor([6, 0]), base_replay(
        model, replayed, replayed_labels, card.preprocess, SMALL.blocks), SMALL, lambda _: None)
    after = adapted.state_dict()
    tail = len(model.blocks) - SMALL.blocks
    for key, value in before.items():
        assert torch.equal(model.state_dict()[key], value)  # the base model: untouched
        moved = not torch.equal(after[key], value)
        learns = key.startswith(("head.", "classifier.")) or any(
            key.startswith(f"blocks.{i}.") for i in range(tail, len(model.blocks)))
        if moved:
            assert learns, key
    assert not torch.equal(after["classifier.weight"], before["classifier.weight"])


def test_a_replay_folder_lacking_a_class_gives_no_replay(tmp_path: Path) -> None:
    classes = list(pbc_fixtures())
    full = fixture_image_folder(tmp_path / "full")
    assert [label for _, label in replay_cells(full, classes, 0)] == list(range(len(classes)))
    partial = tmp_path / "partial"
    (partial / "neutrophil").mkdir(parents=True)
    (full / "neutrophil").iterdir().__next__().rename(partial / "neutrophil" / "cell.jpg")
    assert replay_cells(partial, classes, 0) == []
    assert replay_cells(tmp_path / "absent", classes, 0) == []


def test_steps_and_batches_grow_with_the_cells() -> None:
    assert (TailConfig.scaled(2).steps, TailConfig.scaled(2).batch) == (30, 8)
    assert (TailConfig.scaled(20).steps, TailConfig.scaled(20).batch) == (120, 32)
    assert TailConfig.scaled(500).steps == TailConfig.steps


def test_a_laboratorys_recoloured_cells_are_named_and_images_of_no_cell_are_not(
    base: Base, tmp_path: Path,
) -> None:
    model, card, _ = base
    labels = ["neutrophil", "basophil", "lymphocyte", "monocyte"]
    turns = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.FLIP_LEFT_RIGHT)
    cells = [stained_elsewhere(Image.open(pbc_fixtures()[label])).transpose(turn)
             for label in labels for turn in turns]
    targets = torch.tensor([card.classes.index(label) for label in labels for _ in turns])
    replayed = replay_cells(fixture_image_folder(tmp_path / "base"), card.classes, 0)
    adapted = adapt_tail(model, cells, targets, [i for i, _ in replayed],
                         torch.tensor([label for _, label in replayed]), card.preprocess,
                         TailConfig(views=4, steps=30, batch=16), lambda _: None,
                         card.temperature)
    classifier = CellClassifier(adapted.model, card.model_copy(
        update={"temperature": adapted.temperature}), torch.device("cpu"), adapted.detector)
    named = [p.label for p in classifier.classify_crops(
        [stained_elsewhere(Image.open(pbc_fixtures()[label])) for label in labels])]
    assert named == labels
    grey = Image.new("RGB", (360, 360), (128, 128, 128))
    [nothing] = classifier.classify_crops([grey])
    assert nothing.label == "not_recognised"
