"""A cell that could be a blast never leaves with a normal label unflagged: the blast-like
classes' probability is measured on every cell, and from the card's threshold on a cell named
otherwise is flagged for review, saying why."""

from dataclasses import replace

import pytest
import torch
from PIL import Image

from core.settings import PREVIOUS_MODEL_PATH
from tests.conftest import pbc_fixtures
from vision.field.analyse import analyse
from vision.labels import ALL_CLASSES
from vision.model.artifact import load_artifact
from vision.model.classifier import CellClassifier
from vision.training.finetune import with_more_classes


def knowing_blasts(review_above: float | None) -> CellClassifier:
    """The rollback model's network given the abnormal classes (new, so still unlikely)."""
    model, card, detector = load_artifact(PREVIOUS_MODEL_PATH)
    model = with_more_classes(model, len(ALL_CLASSES))
    card = card.model_copy(update={"classes": list(ALL_CLASSES),
                                   "blast_review_above": review_above})
    return CellClassifier(model, card, torch.device("cpu"), detector)


@pytest.fixture(scope="module")
def classifier() -> CellClassifier:
    return knowing_blasts(0.05)


@pytest.fixture(scope="module")
def neutrophil() -> Image.Image:
    return Image.open(pbc_fixtures()["neutrophil"]).convert("RGB")


def test_the_blast_probability_is_that_of_blasts_and_promonocytes_together(
        classifier: CellClassifier, neutrophil: Image.Image) -> None:
    [prediction] = classifier.classify_image(neutrophil)
    probabilities = classifier.probabilities([neutrophil])[0]
    blast_like = [ALL_CLASSES.index("blast"), ALL_CLASSES.index("promonocyte")]
    assert prediction.blast_probability == pytest.approx(float(probabilities[blast_like].sum()))


def test_a_model_given_new_classes_names_the_ones_it_knew_as_before(
        classifier: CellClassifier, neutrophil: Image.Image) -> None:
    [before] = CellClassifier.from_artifact(PREVIOUS_MODEL_PATH, "cpu").classify_image(neutrophil)
    [after] = classifier.classify_image(neutrophil)
    assert after.label == before.label == "neutrophil"
    assert after.blast_probability < 0.01


def test_a_cell_named_otherwise_is_a_possible_blast_from_the_cards_threshold_on(
        classifier: CellClassifier, neutrophil: Image.Image) -> None:
    [prediction] = classifier.classify_image(neutrophil)
    assert classifier.possible_blast(replace(prediction, blast_probability=0.05))
    assert not classifier.possible_blast(replace(prediction, blast_probability=0.049))
    assert not classifier.possible_blast(replace(prediction, label="blast",
                                                 blast_probability=0.9))
    assert not knowing_blasts(None).possible_blast(replace(prediction, blast_probability=0.9))


def test_the_path_flags_a_possible_blast_and_says_why(neutrophil: Image.Image) -> None:
    # A threshold of zero makes every cell named otherwise a possible blast.
    [cell] = analyse(neutrophil, knowing_blasts(0.0)).cells
    assert cell.label == "neutrophil" and cell.review
    assert cell.reasons[0] == "possible_blast"
    [plain] = analyse(neutrophil, knowing_blasts(None)).cells
    assert plain.label == "neutrophil" and "possible_blast" not in plain.reasons
    assert plain.review == bool(plain.reasons)
