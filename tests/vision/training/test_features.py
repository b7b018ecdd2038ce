"""Embedding a folder's cells with a frozen backbone, a batch of files in memory at a time."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from core.settings import DEFAULT_MODEL_PATH
from tests.conftest import pbc_fixtures
from vision.data import Sample
from vision.model.artifact import load_artifact
from vision.training.features import extract_features


def test_cells_are_embedded_from_their_files_in_batches(tmp_path: Path) -> None:
    model, card, _ = load_artifact(DEFAULT_MODEL_PATH)
    samples = []
    for name in ("neutrophil", "platelet", "basophil"):
        path = tmp_path / f"{name}.png"
        Image.open(pbc_fixtures()[name]).save(path)
        samples.append(Sample(path, card.classes.index(name)))
    lines: list[str] = []
    embedded = extract_features(model, samples, card.preprocess, lines.append, batch_size=2)
    assert embedded.shape == (3, model.classifier.in_features)
    assert lines[-1].startswith("  features 3/3")
    with torch.no_grad():
        labels = model.classifier(embedded).argmax(1).tolist()
    assert [card.classes[i] for i in labels] == ["neutrophil", "platelet", "basophil"]


def test_each_image_can_be_embedded_as_a_view_of_it_given_its_index(tmp_path: Path) -> None:
    model, card, _ = load_artifact(DEFAULT_MODEL_PATH)
    samples = []
    for index, name in enumerate(("neutrophil", "platelet", "basophil")):
        path = tmp_path / f"{name}.png"
        Image.open(pbc_fixtures()[name]).save(path)
        samples.append(Sample(path, index))
    seen: list[int] = []

    def mirrored(image: Image.Image, index: int) -> Image.Image:
        seen.append(index)
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    embedded = extract_features(model, samples, card.preprocess, lambda _: None,
                                batch_size=2, view=mirrored)
    assert seen == [0, 1, 2]
    with torch.no_grad():
        direct = model.features(card.preprocess.batch(
            [Image.open(s.path).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
             for s in samples]))
    assert torch.allclose(embedded, direct, atol=1e-4)
