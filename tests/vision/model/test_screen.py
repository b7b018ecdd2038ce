"""A normal classifier screened for blasts by the model that knows them: the screen gives the
blast-like classes their probability, the classifier divides the rest among its classes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH
from vision.labels import ABNORMAL_CLASSES, PBC_CLASSES
from vision.model.classifier import CellClassifier, shared_trunk
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


def test_the_shipped_screen_holds_the_classifiers_stem_and_first_four_blocks() -> None:
    classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    screen = CellClassifier.from_artifact(ABNORMAL_MODEL_PATH, "cpu")
    assert shared_trunk(classifier.model, screen.model) == 4


def test_the_shared_trunk_ends_at_the_first_block_that_differs() -> None:
    model = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu").model
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.blocks[2].parameters()).add_(1e-3)
    assert shared_trunk(model, other) == 2
    with torch.no_grad():
        next(other.stem.parameters()).add_(1e-3)
    assert shared_trunk(model, other) is None


@pytest.mark.parametrize("torchscript", [False, True])
def test_one_pass_shared_with_the_screen_answers_as_two_passes_do(torchscript: bool) -> None:
    def screened_classifier(share_trunk: bool) -> CellClassifier:
        classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
        classifier.screen_with(CellClassifier.from_artifact(ABNORMAL_MODEL_PATH, "cpu"),
                               share_trunk=share_trunk)
        if torchscript:
            classifier.compile_for_cpu()
        return classifier

    cells = [Image.open(path).convert("RGB") for path in FIXTURES]
    one_pass, two_passes = screened_classifier(True), screened_classifier(False)
    assert one_pass.screen is not None and two_passes.screen is not None
    probs, ood = one_pass.scores(cells)
    expected_probs, expected_ood = two_passes.scores(cells)
    assert ood is not None and expected_ood is not None
    assert torch.allclose(probs, expected_probs, atol=1e-6)
    assert torch.allclose(ood, expected_ood, rtol=1e-5)
