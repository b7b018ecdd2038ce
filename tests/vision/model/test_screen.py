"""A normal classifier screened for blasts by the model that knows them: the screen gives the
blast-like classes their probability, the classifier divides the rest among its classes."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH
from vision.labels import ABNORMAL_CLASSES, PBC_CLASSES
from vision.model.classifier import CellClassifier
from vision.model.screen import screened, screened_columns

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "pbc").glob("*.jpg"))


def test_the_screen_adds_blasts_and_promonocytes_to_a_classifier_that_names_neither() -> None:
    screen_classes = [*PBC_CLASSES, *ABNORMAL_CLASSES]
    columns = screened_columns(PBC_CLASSES, screen_classes)
    assert [screen_classes[i] for i in columns] == ["blast", "promonocyte"]
    assert screened_columns(screen_classes, screen_classes) == []  # it names them itself


def test_screened_probabilities_are_one_distribution_over_both_sets_of_classes() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    screen = torch.tensor([[0.5, 0.1, 0.0, 0.4], [0.05, 0.05, 0.9, 0.0]])  # 3 normal, 1 blast
    combined = screened(probs, screen, [3])
    assert torch.allclose(combined.sum(dim=1), torch.ones(2))
    # The screen's blast probability, and the classifier's proportions for the rest.
    assert torch.allclose(combined[:, 3], screen[:, 3])
    assert torch.allclose(combined[:, :3] / combined[:, :3].sum(dim=1, keepdim=True), probs)


def test_a_screened_classifier_names_healthy_donors_cells_as_the_classifier_alone_does() -> None:
    alone = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    screened_classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu",
                                                       screen=ABNORMAL_MODEL_PATH)
    assert screened_classifier.classes == [*PBC_CLASSES, "blast", "promonocyte"]
    assert screened_classifier.blast_review_above is not None
    cells = [Image.open(path).convert("RGB") for path in FIXTURES]
    expected = [p.label for p in alone.classify_crops(cells)]
    answers = screened_classifier.classify_crops(cells)
    assert [p.label for p in answers] == expected == [p.name.split("__")[0] for p in FIXTURES]
    # What the screen gives the abnormal classes comes out of the classifier's confidence:
    # little, for healthy donors' cells.
    for mine, theirs in zip(answers, alone.classify_crops(cells), strict=True):
        assert 0.9 * theirs.confidence <= mine.confidence <= theirs.confidence + 1e-6


def test_a_model_that_names_blasts_itself_is_not_screened_again() -> None:
    classifier = CellClassifier.from_artifact(ABNORMAL_MODEL_PATH, "cpu",
                                              screen=ABNORMAL_MODEL_PATH)
    assert classifier.screen is None
    assert classifier.classes == list(classifier.card.classes)
