"""The model shipped in models/ is intact, and it recognises real cells it never trained on."""

import pytest
from PIL import Image

from core.settings import DEFAULT_MODEL_PATH
from tests.conftest import pbc_fixtures
from vision.labels import NOT_RECOGNISED
from vision.model.artifact import file_sha256, read_card
from vision.model.classifier import CellClassifier


@pytest.fixture(scope="module")
def shipped() -> CellClassifier:
    return CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")


def test_the_shipped_weights_match_their_card() -> None:
    assert file_sha256(DEFAULT_MODEL_PATH) == read_card(DEFAULT_MODEL_PATH).sha256


def test_the_card_reports_test_metrics(shipped: CellClassifier) -> None:
    test = shipped.card.metrics["test"]
    assert test["n"] == 3114 and test["accuracy"] > 0.9


@pytest.mark.parametrize("label", sorted(pbc_fixtures()))
def test_a_real_fixture_cell_is_classified_correctly(shipped: CellClassifier, label: str) -> None:
    [prediction] = shipped.classify_image(Image.open(pbc_fixtures()[label]).convert("RGB"))
    assert prediction.label == label
    assert prediction.top3[0].label == label


def test_a_natural_photo_is_not_recognised_as_a_cell(shipped: CellClassifier) -> None:
    data = pytest.importorskip("skimage.data")
    if shipped.detector is None:
        pytest.skip("this model ships no rejection step")
    [prediction] = shipped.classify_image(Image.fromarray(data.astronaut()))
    assert prediction.label == NOT_RECOGNISED
