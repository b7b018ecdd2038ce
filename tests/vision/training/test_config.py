"""A training recipe names its model's classes and the data it learns from."""

import pytest
from pydantic import ValidationError

from vision.labels import ALL_CLASSES, PBC_CLASSES
from vision.training.config import TrainConfig


def test_a_recipe_trains_the_eight_pbc_classes_on_pbc_by_default() -> None:
    config = TrainConfig()
    assert config.classes == list(PBC_CLASSES)
    assert [(s.name, s.licence) for s in config.sources] == [("PBC", "CC BY 4.0")]


def test_a_recipe_may_name_the_abnormal_classes_too() -> None:
    assert TrainConfig(classes=list(ALL_CLASSES)).classes[-5:] == [
        "blast", "promonocyte", "smudge", "reactive_lymphocyte", "plasma_cell"]


@pytest.mark.parametrize("classes", [["neutrophil", "myeloblast"], ["blast", "blast"]])
def test_an_unknown_or_repeated_label_is_refused_when_the_recipe_is_read(
        classes: list[str]) -> None:
    with pytest.raises(ValidationError):
        TrainConfig(classes=classes)
