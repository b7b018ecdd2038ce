"""Which base images a retraining replays beside the expert-labelled cells."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from core.labels import PBC_CLASSES
from core.retraining.dataset import per_class_sample, proportional_sample
from tests.conftest import pbc_fixtures

# An unbalanced base set, like PBC's: many neutrophils, few basophils.
COUNTS = {label: 4 for label in PBC_CLASSES} | {"neutrophil": 20, "basophil": 2}


@pytest.fixture
def unbalanced(tmp_path: Path) -> Path:
    for label, path in pbc_fixtures().items():
        (tmp_path / label).mkdir()
        for copy in range(COUNTS[label]):
            shutil.copy(path, tmp_path / label / f"{copy}-{path.name}")
    return tmp_path


def _counts(samples: list) -> Counter[str]:
    return Counter(PBC_CLASSES[s.label] for s in samples)


def test_proportional_replay_keeps_the_class_proportions_of_the_base_set(
    unbalanced: Path,
) -> None:
    chosen = proportional_sample(unbalanced, 0.5, seed=0)
    assert _counts(chosen) == {label: n // 2 for label, n in COUNTS.items()}


def test_proportional_replay_keeps_at_least_one_of_every_class(unbalanced: Path) -> None:
    counts = _counts(proportional_sample(unbalanced, 0.1, seed=0))
    assert counts["neutrophil"] == 2
    assert set(counts) == set(PBC_CLASSES)


def test_replay_samples_are_the_same_for_the_same_seed(unbalanced: Path) -> None:
    assert proportional_sample(unbalanced, 0.5, 3) == proportional_sample(unbalanced, 0.5, 3)
    assert proportional_sample(unbalanced, 0.5, 3) != proportional_sample(unbalanced, 0.5, 4)


def test_balanced_replay_takes_the_same_number_of_every_class_where_it_can(
    unbalanced: Path,
) -> None:
    assert _counts(per_class_sample(unbalanced, 3, seed=0)) == (
        {label: 3 for label in PBC_CLASSES} | {"basophil": 2})
